// Linearizability checker for key-value histories: the Wing–Gong search with Lowe's
// memoization of (linearized set, state), as in Porcupine, run per key (P-compositionality).

export type KvOp =
  | { kind: 'put'; key: string; value: string }
  | { kind: 'get'; key: string }
  | { kind: 'cas'; key: string; expected: string | null; value: string };

export interface HistoryOp {
  client: number;
  op: KvOp;
  call: number;
  /** Infinity when the client never learned the outcome. */
  ret: number;
  /** get: the value read; put: true; cas: whether it swapped; undefined when unknown. */
  output: string | null | boolean | undefined;
}

type State = string | null;

function step(state: State, h: HistoryOp): { ok: boolean; next: State } {
  const op = h.op;
  const known = h.output !== undefined;
  switch (op.kind) {
    case 'get':
      return { ok: !known || h.output === state, next: state };
    case 'put':
      return { ok: true, next: op.value };
    case 'cas': {
      const swapped = state === op.expected;
      if (known && h.output !== swapped) return { ok: false, next: state };
      return { ok: true, next: swapped ? op.value : state };
    }
  }
}

interface Node {
  op: number; // index into ops
  isCall: boolean;
  prev: Node | null;
  next: Node | null;
  match: Node | null; // call -> its return
}

type SearchResult = { ok: true } | { ok: false; timeout: boolean; longest: number };

/**
 * The Wing–Gong search with memoization of (linearized set, state), shared by the per-key
 * and the whole-state checkers. `tryOp` says whether operation i may take effect in `state`
 * (its recorded output matches) and the state after; `key` is a canonical string of a state.
 */
function search<S>(
  times: Array<{ call: number; ret: number }>,
  init: S,
  tryOp: (state: S, i: number) => { ok: boolean; next: S },
  key: (state: S) => string,
  budget: number,
): SearchResult {
  const events: Array<{ t: number; isCall: boolean; op: number }> = [];
  times.forEach((o, i) => {
    events.push({ t: o.call, isCall: true, op: i });
    events.push({ t: o.ret, isCall: false, op: i });
  });
  // Calls before returns at equal times: concurrent ops at a tie may overlap.
  events.sort((a, b) => a.t - b.t || (a.isCall === b.isCall ? a.op - b.op : a.isCall ? -1 : 1));
  const head: Node = { op: -1, isCall: false, prev: null, next: null, match: null };
  let tail = head;
  const callNode = new Map<number, Node>();
  for (const e of events) {
    const n: Node = { op: e.op, isCall: e.isCall, prev: tail, next: null, match: null };
    tail.next = n;
    tail = n;
    if (e.isCall) callNode.set(e.op, n);
    else callNode.get(e.op)!.match = n;
  }
  const lift = (n: Node) => {
    n.prev!.next = n.next;
    if (n.next) n.next.prev = n.prev;
    const m = n.match!;
    m.prev!.next = m.next;
    if (m.next) m.next.prev = m.prev;
  };
  const unlift = (n: Node) => {
    const m = n.match!;
    m.prev!.next = m;
    if (m.next) m.next.prev = m;
    n.prev!.next = n;
    if (n.next) n.next.prev = n;
  };
  const linearized = new Uint8Array(times.length);
  const cache = new Set<string>();
  const stack: Array<{ node: Node; state: S }> = [];
  let state = init;
  let entry = head.next;
  let steps = 0;
  let longest = 0;
  while (head.next !== null) {
    if (++steps > budget) return { ok: false, timeout: true, longest };
    if (entry === null) return { ok: false, timeout: false, longest };
    if (entry.isCall) {
      const r = tryOp(state, entry.op);
      if (r.ok) {
        linearized[entry.op] = 1;
        const k = `${Buffer.from(linearized).toString('base64')}|${key(r.next)}`;
        if (!cache.has(k)) {
          cache.add(k);
          stack.push({ node: entry, state });
          longest = Math.max(longest, stack.length);
          state = r.next;
          lift(entry);
          entry = head.next;
          continue;
        }
        linearized[entry.op] = 0;
      }
      entry = entry.next;
    } else {
      // A return with its call not yet linearized: backtrack.
      const top = stack.pop();
      if (!top) return { ok: false, timeout: false, longest };
      state = top.state;
      linearized[top.node.op] = 0;
      unlift(top.node);
      entry = top.node.next;
    }
  }
  return { ok: true };
}

/** Checks one key's history; returns true if some total order explains every result. */
export function checkKey(ops: HistoryOp[], initial: State = null, budget = 2_000_000): boolean | 'timeout' {
  const r = search(ops, initial, (state, i) => step(state, ops[i]!), (state) => state ?? '\u0001', budget);
  return r.ok ? true : r.timeout ? 'timeout' : false;
}

/** Checks a whole history key by key; returns the first key that is not linearizable, or null. */
export function checkHistory(history: HistoryOp[]): { ok: true } | { ok: false; key: string; reason: string } {
  const byKey = new Map<string, HistoryOp[]>();
  for (const h of history) {
    let list = byKey.get(h.op.key);
    if (!list) byKey.set(h.op.key, (list = []));
    list.push(h);
  }
  for (const [key, ops] of [...byKey.entries()].sort()) {
    const r = checkKey(ops);
    if (r !== true) return { ok: false, key, reason: r === 'timeout' ? 'checker budget exhausted' : 'not linearizable' };
  }
  return { ok: true };
}

/** A sequential specification: what an operation returns and does to the state. */
export interface Model<S, O> {
  init: S;
  /** The output the operation must return in `state`, and the state after it. */
  step(state: S, op: O): { output: string; next: S };
  /** A canonical string of the state (memoization key). */
  key(state: S): string;
}

export interface ModelOp<O> {
  op: O;
  call: number;
  /** Infinity when the client never learned the outcome. */
  ret: number;
  /** undefined when unknown. */
  output: string | undefined;
}

/**
 * Wing–Gong search with memoization of (linearized set, state) over a whole-state model (for
 * histories whose operations touch several keys, like renames). Bounded by `budget` steps.
 */
export function checkModel<S, O>(ops: Array<ModelOp<O>>, model: Model<S, O>, budget = 2_000_000): { ok: true } | { ok: false; reason: string } {
  const r = search(ops, model.init, (state, i) => {
    const h = ops[i]!;
    const out = model.step(state, h.op);
    return { ok: h.output === undefined || h.output === out.output, next: out.next };
  }, (state) => model.key(state), budget);
  if (r.ok) return { ok: true };
  return {
    ok: false,
    reason: r.timeout
      ? `checker budget of ${budget} steps exhausted`
      : `not linearizable (longest linearizable prefix: ${r.longest} of ${ops.length} ops)`,
  };
}
