// The deterministic cluster simulator: a seed drives partitions, crashes/restarts, message
// loss/duplication/delay/reordering and membership changes under concurrent KV clients.
// Safety invariants are checked after every event; the client history is checked for
// linearizability at the end. The same seed always replays the same run.
import { ConfChangeType, type Entry, type Message, MsgType, StateRole, emptyMessage } from '../core/types.js';
import { encodeKv } from './kv.js';
import { type HistoryOp, type KvOp, checkHistory } from './linearizability.js';
import { EventQueue, SimNetwork } from './network.js';
import { SimNode, type NodeOptions } from './node.js';
import { Prng } from './prng.js';

export interface SimOptions {
  clients?: number;
  opsPerClient?: number;
  keys?: number;
  /** Simulated time limit in ticks (a seed that cannot finish its ops fails). */
  maxTicks?: number;
}

export interface SimResult {
  seed: number;
  ok: boolean;
  error?: string;
  ops: number;
  unknownOps: number;
  ticks: number;
  crashes: number;
  partitions: number;
  confChanges: number;
  leaderChanges: number;
  messages: number;
  /** A digest of the run: equal digests for equal seeds show replay determinism. */
  digest: string;
}

const TICK = 10; // time units per tick

type Event =
  | { kind: 'tick' }
  | { kind: 'msg'; m: Message }
  | { kind: 'client'; c: number }
  | { kind: 'timeout'; c: number; opId: number }
  | { kind: 'fault' }
  | { kind: 'restart'; id: string }
  | { kind: 'snapStatus'; leader: string; peer: string; failed: boolean }
  | { kind: 'persisted'; id: string; incarnation: number };

class InvariantViolation extends Error {}

export function runSeed(seed: number, opts: SimOptions = {}): SimResult {
  const sim = new Simulation(seed, opts);
  try {
    sim.run();
    return sim.result(true);
  } catch (e) {
    return sim.result(false, e instanceof Error ? `${e.name}: ${e.message}` : String(e));
  }
}

class Simulation {
  private readonly rng: Prng;
  private readonly net: SimNetwork;
  private readonly q = new EventQueue<Event>();
  private readonly nodes = new Map<string, SimNode>();
  private readonly removed = new Set<string>();
  private now = 0;
  private readonly nodeOpts: NodeOptions;
  private readonly history: HistoryOp[] = [];
  private readonly clients: Array<{ done: number; opId: number; pending: HistoryOp | null; target: string }> = [];
  private readonly nClients: number;
  private readonly opsPerClient: number;
  private readonly keys: string[];
  private readonly maxTicks: number;
  // invariant state
  private readonly leaderOfTerm = new Map<number, string>();
  private readonly committedTerm = new Map<number, number>();
  private readonly appliedEntry = new Map<number, Entry>();
  private readonly checkedCommit = new Map<string, number>();
  private readonly leaderSeen = new Set<string>();
  private stats = { crashes: 0, partitions: 0, confChanges: 0, messages: 0 };
  private nextNodeId: number;
  /** The leader of the previous term that had one (clients with stale caches target it). */
  private formerLeader: string | null = null;
  private hash = 0;

  constructor(
    private readonly seed: number,
    opts: SimOptions,
  ) {
    this.rng = new Prng(seed);
    this.nClients = opts.clients ?? 5;
    this.opsPerClient = opts.opsPerClient ?? 50;
    this.keys = Array.from({ length: opts.keys ?? 4 }, (_, i) => `k${i}`);
    this.maxTicks = opts.maxTicks ?? 6000;
    const size = this.rng.chance(0.5) ? 3 : 5;
    this.nodeOpts = {
      electionTicks: 10,
      heartbeatTicks: 2,
      leaseRead: this.rng.chance(0.5),
      // Without check-quorum a deposed leader lingers in a minority: reads there must still be safe.
      checkQuorum: this.rng.chance(0.75),
      compactEvery: 8 + this.rng.int(40),
      maxInflight: 1 + this.rng.int(8),
      leaderSendsBeforePersist: true,
    };
    this.net = new SimNetwork(this.rng, {
      lossRate: this.rng.chance(0.5) ? this.rng.next() * 0.08 : 0,
      dupRate: this.rng.chance(0.5) ? this.rng.next() * 0.05 : 0,
      minDelay: 1,
      maxDelay: 2 + this.rng.int(12),
    });
    const ids = Array.from({ length: size }, (_, i) => `n${i + 1}`);
    this.nextNodeId = size + 1;
    for (const id of ids) this.addNode(id, { voters: ids.slice().sort(), learners: [] });
    for (let c = 0; c < this.nClients; c++) {
      this.clients.push({ done: 0, opId: 0, pending: null, target: this.rng.pick(ids) });
      this.q.push(this.rng.int(5 * TICK), { kind: 'client', c });
    }
    this.q.push(TICK, { kind: 'tick' });
    this.q.push(20 * TICK + this.rng.int(20 * TICK), { kind: 'fault' });
  }

  private addNode(id: string, bootstrap: { voters: string[]; learners: string[] } | null): SimNode {
    const n = new SimNode(id, bootstrap, this.nodeOpts, this.rng);
    n.onApply = (nid, e) => this.checkApplied(nid, e);
    n.start();
    this.nodes.set(id, n);
    return n;
  }

  run(): void {
    const limit = this.maxTicks * TICK;
    while (this.now < limit) {
      if (this.clients.every((c) => c.done >= this.opsPerClient && !c.pending)) break;
      const ev = this.q.pop();
      if (!ev) break;
      this.now = ev.t;
      this.handle(ev.v);
    }
    if (!this.clients.every((c) => c.done >= this.opsPerClient && !c.pending)) {
      throw new InvariantViolation(`clients did not finish within ${this.maxTicks} ticks (liveness)`);
    }
    this.settle();
    const lin = checkHistory(this.history);
    if (!lin.ok) throw new InvariantViolation(`history of key ${lin.key}: ${lin.reason}`);
  }

  private handle(ev: Event): void {
    switch (ev.kind) {
      case 'tick':
        for (const n of this.nodes.values()) {
          if (!n.core) continue;
          n.core.tick();
          this.process(n);
        }
        this.q.push(this.now + TICK, { kind: 'tick' });
        return;
      case 'msg': {
        const n = this.nodes.get(ev.m.to);
        if (!n?.core) return;
        n.core.step(ev.m);
        this.process(n);
        return;
      }
      case 'client':
        this.clientStep(ev.c);
        return;
      case 'timeout': {
        const cl = this.clients[ev.c]!;
        if (cl.pending && cl.opId === ev.opId) {
          this.finishOp(ev.c, undefined);
          cl.target = this.rng.pick([...this.nodes.keys()]); // give up on that node
        }
        return;
      }
      case 'fault':
        this.injectFault();
        this.q.push(this.now + 10 * TICK + this.rng.int(40 * TICK), { kind: 'fault' });
        return;
      case 'snapStatus': {
        const n = this.nodes.get(ev.leader);
        if (!n?.core) return;
        n.core.step({ ...emptyMessage(MsgType.SnapStatus, ev.leader, ev.peer), reject: ev.failed });
        this.process(n);
        return;
      }
      case 'persisted': {
        const n = this.nodes.get(ev.id);
        if (!n?.core || n.incarnation !== ev.incarnation || !n.persisting) return;
        n.finishPersist((m) => this.deliver(m));
        this.afterProcess(n);
        return;
      }
      case 'restart': {
        const n = this.nodes.get(ev.id);
        if (!n || n.up || this.removed.has(ev.id)) return;
        n.start();
        this.checkedCommit.set(ev.id, Math.min(this.checkedCommit.get(ev.id) ?? 0, n.core!.raft.log.committed));
        this.process(n);
        return;
      }
    }
  }

  private process(n: SimNode): void {
    const pendingBefore = n.persisting;
    n.process((m) => this.deliver(m));
    if (n.persisting && n.persisting !== pendingBefore) this.schedulePersisted(n);
    this.checkNode(n);
  }

  private afterProcess(n: SimNode): void {
    if (n.persisting) this.schedulePersisted(n);
    this.checkNode(n);
  }

  /** The leader's own write finishes a while after its appends left (crashes may come first). */
  private schedulePersisted(n: SimNode): void {
    this.q.push(this.now + 1 + this.rng.int(2 * TICK), { kind: 'persisted', id: n.id, incarnation: n.incarnation });
  }

  private deliver(m: Message): void {
    this.stats.messages++;
    const times = this.net.schedule(m, this.now);
    for (const t of times) this.q.push(t, { kind: 'msg', m });
    // The runtime's transport reports how a snapshot send ended.
    if (m.type === MsgType.Snap) this.q.push(times[0] ?? this.now + 1, { kind: 'snapStatus', leader: m.from, peer: m.to, failed: times.length === 0 });
  }

  // ---- clients ----

  private clientStep(c: number): void {
    const cl = this.clients[c]!;
    if (!cl.pending) {
      if (cl.done >= this.opsPerClient) return;
      const key = this.rng.pick(this.keys);
      const r = this.rng.next();
      const value = `${c}.${cl.done}`;
      let op: KvOp;
      if (r < 0.4) op = { kind: 'put', key, value };
      else if (r < 0.7) op = { kind: 'get', key };
      else op = { kind: 'cas', key, expected: this.rng.chance(0.3) ? null : `${this.rng.int(this.nClients)}.${this.rng.int(cl.done + 1)}`, value };
      // Some reads go to whichever node the client last heard was leader (a stale cache):
      // a deposed leader that still believes it leads must not answer them from its state.
      if (op.kind === 'get' && this.rng.chance(0.3)) cl.target = this.formerLeader ?? cl.target;
      cl.pending = { client: c, op, call: this.now, ret: Infinity, output: undefined };
      cl.opId++;
      this.q.push(this.now + 40 * TICK, { kind: 'timeout', c, opId: cl.opId });
    }
    const h = cl.pending;
    const opId = cl.opId;
    const node = this.nodes.get(cl.target);
    const answer = (out: HistoryOp['output']) => {
      if (cl.pending === h && cl.opId === opId) this.finishOp(c, out);
    };
    let accepted = false;
    if (node?.up && node.isLeader()) {
      const op = h.op;
      if (op.kind === 'get') accepted = node.read(`${c}:${opId}`, op.key, (v) => (v === undefined ? this.finishOp(c, undefined, true) : answer(v)));
      else {
        const cmd = op.kind === 'put' ? { op: 'put' as const, key: op.key, value: op.value } : { op: 'cas' as const, key: op.key, value: op.value, expected: op.expected };
        accepted = node.propose(encodeKv(cmd), (ok, result) => (ok ? answer(result as boolean) : answer(undefined)));
      }
      if (accepted) this.process(node);
    }
    if (!accepted) {
      // Not the leader (nothing was appended): follow its hint or try another node, soon.
      const hint = node?.core?.raft.lead;
      cl.target = hint && this.nodes.has(hint) && this.rng.chance(0.8) ? hint : this.rng.pick([...this.nodes.keys()]);
      this.q.push(this.now + 1 + this.rng.int(TICK), { kind: 'client', c });
    }
  }

  /** Ends the client's current op; `out === undefined` = outcome unknown (or a failed read, dropped). */
  private finishOp(c: number, out: HistoryOp['output'], dropRead = false): void {
    const cl = this.clients[c]!;
    const h = cl.pending;
    if (!h) return;
    cl.pending = null;
    cl.done++;
    if (out !== undefined) h.ret = this.now;
    if (!(h.op.kind === 'get' && (out === undefined || dropRead))) this.history.push(h);
    this.hash = (Math.imul(this.hash ^ (this.now + c * 7919), 16777619) + (out === undefined ? 1 : 2)) >>> 0;
    this.q.push(this.now + this.rng.int(3 * TICK), { kind: 'client', c });
  }

  // ---- faults ----

  private injectFault(): void {
    const live = [...this.nodes.values()].filter((n) => !this.removed.has(n.id));
    const r = this.rng.next();
    if (r < 0.12) {
      // Isolate the leader (Jepsen's favourite): a deposed leader must not serve stale reads.
      const leader = live.find((n) => n.isLeader());
      if (leader) {
        this.net.heal();
        this.net.partition([leader.id], live.map((n) => n.id).filter((id) => id !== leader.id));
        this.stats.partitions++;
      }
    } else if (r < 0.3) {
      this.net.heal();
      const ids = live.map((n) => n.id).sort();
      const side = ids.filter(() => this.rng.chance(0.5));
      if (side.length > 0 && side.length < ids.length) {
        this.net.partition(side, ids.filter((id) => !side.includes(id)));
        this.stats.partitions++;
      }
    } else if (r < 0.42) {
      this.net.heal();
    } else if (r < 0.65) {
      const up = live.filter((n) => n.up);
      if (up.length === 0) return;
      // Prefer the leader sometimes: crashing it during writes is the interesting case.
      const leader = up.find((n) => n.isLeader());
      const victim = leader && this.rng.chance(0.5) ? leader : this.rng.pick(up);
      victim.crash();
      this.stats.crashes++;
      this.q.push(this.now + 5 * TICK + this.rng.int(60 * TICK), { kind: 'restart', id: victim.id });
    } else if (r < 0.85) {
      this.membershipChange(live);
    } else {
      this.net.faults.lossRate = this.rng.chance(0.5) ? this.rng.next() * 0.1 : 0;
      this.net.faults.dupRate = this.rng.chance(0.5) ? this.rng.next() * 0.05 : 0;
    }
  }

  private membershipChange(live: SimNode[]): void {
    const leader = live.find((n) => n.isLeader());
    if (!leader?.core) return;
    const conf = leader.core.raft.conf;
    if (conf.learners.length > 0) return; // a learner is still catching up
    if (conf.voters.length > 3 && this.rng.chance(0.5)) {
      const victim = this.rng.pick(conf.voters);
      if (leader.proposeConf({ type: ConfChangeType.Remove, node: victim })) this.stats.confChanges++;
    } else if (conf.voters.length < 5 && this.nextNodeId < 10) {
      const id = `n${this.nextNodeId++}`;
      this.addNode(id, null);
      if (leader.proposeConf({ type: ConfChangeType.AddLearner, node: id })) this.stats.confChanges++;
    }
    this.process(leader);
  }

  /** Heals everything, restarts crashed members and lets the group converge. */
  private settle(): void {
    this.net.heal();
    this.net.faults.lossRate = 0;
    this.net.faults.dupRate = 0;
    for (const n of this.nodes.values()) if (!n.up && !this.removed.has(n.id)) this.handle({ kind: 'restart', id: n.id });
    const until = this.now + 400 * TICK;
    while (this.now < until) {
      const ev = this.q.pop();
      if (!ev) break;
      this.now = ev.t;
      if (ev.v.kind === 'fault' || ev.v.kind === 'client') continue;
      this.handle(ev.v);
      if (ev.v.kind === 'tick' && this.converged()) break;
    }
    if (!this.converged()) throw new InvariantViolation(`cluster did not converge after healing: ${this.describe()}`);
    this.checkLogMatching();
  }

  private members(): SimNode[] {
    const leader = [...this.nodes.values()].find((n) => n.isLeader());
    if (!leader?.core) return [];
    const conf = leader.core.raft.conf;
    return [...conf.voters, ...conf.learners].map((id) => this.nodes.get(id)!).filter(Boolean);
  }

  private describe(): string {
    return [...this.nodes.values()]
      .map((n) => {
        const r = n.core?.raft;
        if (!r) return `${n.id}:down${this.removed.has(n.id) ? '(removed)' : ''}`;
        return `${n.id}:${r.role}/t${r.term}/lead=${r.lead}/c${r.log.committed}/last${r.log.lastIndex()}/applied${n.kv.applied}/first${r.log.firstIndex()}/v=${r.conf.voters.join(',')}/l=${r.conf.learners.join(',')}`;
      })
      .join(' ');
  }

  private converged(): boolean {
    const ms = this.members();
    if (ms.length === 0) return false;
    const leader = ms.find((n) => n.isLeader())!;
    const commit = leader.core!.raft.log.committed;
    return ms.every((n) => n.up && n.kv.applied === commit);
  }

  // ---- invariants ----

  private checkApplied(id: string, e: Entry): void {
    const prev = this.appliedEntry.get(e.index);
    if (!prev) {
      this.appliedEntry.set(e.index, e);
      return;
    }
    if (prev.term !== e.term || !prev.data.equals(e.data)) {
      throw new InvariantViolation(`state machine safety: ${id} applied (${e.index},${e.term}) but another node applied (${e.index},${prev.term})`);
    }
  }

  private checkNode(n: SimNode): void {
    const core = n.core;
    if (!core) return;
    const r = core.raft;
    if (r.role === StateRole.Leader) {
      const other = this.leaderOfTerm.get(r.term);
      if (other !== undefined && other !== n.id) throw new InvariantViolation(`election safety: ${other} and ${n.id} both lead term ${r.term}`);
      if (other === undefined) {
        const prevTerm = Math.max(0, ...this.leaderOfTerm.keys());
        this.formerLeader = this.leaderOfTerm.get(prevTerm) ?? null;
        this.leaderOfTerm.set(r.term, n.id);
      }
      const key = `${n.id}@${r.term}`;
      if (!this.leaderSeen.has(key)) {
        this.leaderSeen.add(key);
        this.checkLeaderCompleteness(n);
      }
    }
    // Committed prefix: every node agrees on the term of each committed index. A leader whose
    // own write is in flight counts its unwritten entries towards commit, yet nothing can
    // observe that commit (no apply, no message announces it) until the write is done: if it
    // crashes first, those entries may be lost, as with any uncommitted entry.
    const log = r.log;
    const committed = n.persisting && n.persisting.entries.length > 0 ? Math.min(log.committed, n.persisting.entries[0]!.index - 1) : log.committed;
    const from = Math.max((this.checkedCommit.get(n.id) ?? 0) + 1, log.firstIndex());
    for (let i = from; i <= committed; i++) {
      const t = log.term(i);
      const known = this.committedTerm.get(i);
      if (known === undefined) this.committedTerm.set(i, t);
      else if (known !== t) throw new InvariantViolation(`log matching: ${n.id} committed (${i},${t}), others (${i},${known})`);
    }
    if (committed > (this.checkedCommit.get(n.id) ?? 0)) this.checkedCommit.set(n.id, committed);
    if (r.isRemoved() && !this.removed.has(n.id)) {
      this.removed.add(n.id);
      n.crash(); // the host would remove the group here
    }
  }

  private checkLeaderCompleteness(n: SimNode): void {
    const log = n.core!.raft.log;
    for (const [i, t] of this.committedTerm) {
      if (i < log.firstIndex()) continue;
      if (log.termOrZero(i) !== t) throw new InvariantViolation(`leader completeness: leader ${n.id} lacks committed (${i},${t})`);
    }
  }

  private checkLogMatching(): void {
    const ns = this.members();
    for (let a = 0; a < ns.length; a++) {
      for (let b = a + 1; b < ns.length; b++) {
        const la = ns[a]!.core!.raft.log;
        const lb = ns[b]!.core!.raft.log;
        const lo = Math.max(la.firstIndex(), lb.firstIndex());
        const hi = Math.min(la.lastIndex(), lb.lastIndex());
        let matchedAbove = false;
        for (let i = hi; i >= lo; i--) {
          const same = la.term(i) === lb.term(i);
          if (matchedAbove && !same) throw new InvariantViolation(`log matching: ${ns[a]!.id} and ${ns[b]!.id} differ at ${i} below a match`);
          if (same) matchedAbove = true;
        }
        const ka = JSON.stringify([...ns[a]!.kv.data.entries()].sort());
        const kb = JSON.stringify([...ns[b]!.kv.data.entries()].sort());
        if (ka !== kb) throw new InvariantViolation(`replicas ${ns[a]!.id} and ${ns[b]!.id} hold different data after converging`);
      }
    }
  }

  result(ok: boolean, error?: string): SimResult {
    return {
      seed: this.seed,
      ok,
      error,
      ops: this.history.length,
      unknownOps: this.history.filter((h) => h.ret === Infinity).length,
      ticks: Math.floor(this.now / TICK),
      crashes: this.stats.crashes,
      partitions: this.stats.partitions,
      confChanges: this.stats.confChanges,
      leaderChanges: this.leaderOfTerm.size,
      messages: this.stats.messages,
      digest: `${this.hash.toString(16)}:${this.now}:${this.stats.messages}:${this.history.length}`,
    };
  }
}
