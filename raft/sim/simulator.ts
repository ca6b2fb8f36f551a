// The raft simulator: a seeded run of the real runtime (RaftHost/GroupNode over simulated
// clock, network and disks, raft/sim/cluster.ts) with a key-value state machine and
// concurrent clients doing put / get / compare-and-set while faults are injected. Safety
// invariants are checked after every event; the client history is checked for
// linearizability at the end. The same seed always replays the same run.
import { StatusCode, TierfsError } from '../../common/status.js';
import { type HistoryOp, type KvOp, checkHistory } from './linearizability.js';
import { InvariantViolation, SimCluster } from './cluster.js';
import { SimKvStateMachine, encodeKv, kvDigest } from './kv.js';
import { Prng } from './prng.js';
import { runSimulation } from './run.js';
import { SimWorld } from './world.js';

export interface SimOptions {
  clients?: number;
  opsPerClient?: number;
  keys?: number;
  /** Simulated time limit in ticks (a seed that cannot finish its ops fails). */
  maxTicks?: number;
  /** For the checker's own tests: a state machine with a deliberate bug. */
  brokenStateMachine?: 'drop-put';
  /** For the checker's own tests: disks that acknowledge fsync without doing it (Raft acks before persisting). */
  lyingDisks?: boolean;
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
  diskFailures: number;
  lostWrites: number;
  leaderChanges: number;
  messages: number;
  events: number;
  /** A digest of the run: equal digests for equal seeds show replay determinism. */
  digest: string;
}

export const TICK_MS = 10;

interface Client {
  done: number;
  opId: number;
  pending: HistoryOp | null;
  target: string;
}

export async function runSeed(seed: number, opts: SimOptions = {}): Promise<SimResult> {
  return runSimulation(new Simulation(seed, opts));
}

/** A state machine that silently loses every third put (to show the checker catches it). */
class DroppingKv extends SimKvStateMachine {
  private n = 0;
  override apply(entries: Parameters<SimKvStateMachine['apply']>[0]): Promise<unknown[]> {
    return super.apply(entries.map((e) => (e.data[0] === 0x70 && ++this.n % 3 === 0 ? { ...e, data: encodeKv({ op: 'cas', key: '\u0002', expected: '\u0003', value: '' }) } : e)));
  }
}

class Simulation {
  private readonly rng: Prng;
  private readonly world: SimWorld;
  private readonly cluster: SimCluster;
  private readonly kv = new Map<string, SimKvStateMachine>();
  private readonly history: HistoryOp[] = [];
  private readonly clients: Client[] = [];
  private readonly nClients: number;
  private readonly opsPerClient: number;
  private readonly keys: string[];
  private readonly maxTicks: number;
  private faulting = true;
  private hash = 0;

  constructor(
    private readonly seed: number,
    private readonly opts: SimOptions,
  ) {
    this.rng = new Prng(seed);
    this.world = new SimWorld(this.rng);
    this.nClients = opts.clients ?? 4;
    this.opsPerClient = opts.opsPerClient ?? 30;
    this.keys = Array.from({ length: opts.keys ?? 3 }, (_, i) => `k${i}`);
    this.maxTicks = opts.maxTicks ?? 6000;
    const rng = this.rng;
    this.cluster = new SimCluster(
      this.world,
      rng,
      {
        size: rng.chance(0.5) ? 3 : 5,
        tickMs: TICK_MS,
        electionTicks: 10,
        heartbeatTicks: 2,
        leaseRead: rng.chance(0.5),
        // Without check-quorum a deposed leader lingers in a minority: reads there must still be safe.
        checkQuorum: rng.chance(0.75),
        snapshotThreshold: 8 + rng.int(40),
        maxInflightMsgs: 1 + rng.int(8),
        maxServers: 9,
        lyingDisks: opts.lyingDisks,
      },
      {
        open: async (id, disk) => {
          const sm = await (opts.brokenStateMachine ? new DroppingKv(disk) : new SimKvStateMachine(disk)).load();
          this.kv.set(id, sm);
          return sm;
        },
        digest: kvDigest,
      },
    );
    for (let c = 0; c < this.nClients; c++) {
      this.clients.push({ done: 0, opId: 0, pending: null, target: this.rng.pick(this.cluster.ids()) });
      this.world.after(this.rng.int(5 * TICK_MS), () => this.clientStep(c));
    }
    this.world.after(20 * TICK_MS + this.rng.int(20 * TICK_MS), () => this.fault());
  }

  private allDone(): boolean {
    return this.clients.every((c) => c.done >= this.opsPerClient && !c.pending);
  }

  async run(): Promise<void> {
    const check = () => this.cluster.check();
    if (!(await this.world.run(this.maxTicks * TICK_MS, () => this.allDone(), check))) {
      throw new InvariantViolation(`clients did not finish within ${this.maxTicks} ticks (liveness): ${this.cluster.describe()}`);
    }
    this.faulting = false;
    await this.cluster.healAndConverge(TICK_MS);
    const lin = checkHistory(this.history);
    if (!lin.ok) throw new InvariantViolation(`history of key ${lin.key}: ${lin.reason}`);
  }

  private fault(): void {
    if (!this.faulting) return;
    this.cluster.injectFault();
    this.world.after(10 * TICK_MS + this.rng.int(40 * TICK_MS), () => this.fault());
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
      // Some reads go to whichever server the client last heard was leader (a stale cache):
      // a deposed leader that still believes it leads must not answer them from its state.
      if (op.kind === 'get' && this.rng.chance(0.3)) cl.target = this.cluster.formerLeader ?? cl.target;
      cl.pending = { client: c, op, call: this.world.now, ret: Infinity, output: undefined };
      const opId = ++cl.opId;
      this.world.after(40 * TICK_MS, () => {
        if (cl.pending && cl.opId === opId) {
          this.finishOp(c, undefined);
          cl.target = this.rng.pick(this.cluster.ids()); // give up on that server
        }
      });
    }
    const h = cl.pending!;
    const opId = cl.opId;
    const answer = (out: HistoryOp['output']) => {
      if (cl.pending === h && cl.opId === opId) this.finishOp(c, out);
    };
    const s = this.cluster.servers.get(cl.target);
    const g = s?.alive ? s.group : null;
    const kv = s ? this.kv.get(s.id) : undefined;
    // As a service handler does: ask the group, which answers NOT_LEADER unless it leads.
    if (g && kv && g.isLeader()) {
      const op = h.op;
      if (op.kind === 'get') {
        g.readBarrier().then(
          () => answer(kv.data.get(op.key) ?? null),
          () => answer(undefined), // a failed read has no effect: dropped from the history
        );
      } else {
        const cmd = op.kind === 'put' ? { op: 'put' as const, key: op.key, value: op.value } : { op: 'cas' as const, key: op.key, value: op.value, expected: op.expected };
        g.propose(encodeKv(cmd)).then(
          (res) => answer(res as boolean),
          (e: unknown) => {
            if (e instanceof TierfsError && (e.code === StatusCode.UNAVAILABLE || e.code === StatusCode.BUSY)) {
              // Refused before it reached the log (a stopped group, back-pressure): try elsewhere.
              if (cl.pending === h && cl.opId === opId) this.retryElsewhere(c, null);
            } else {
              answer(undefined); // leadership lost: the entry may still commit
            }
          },
        );
      }
      return;
    }
    // Not the leader (nothing was appended): follow its hint or try another server, soon.
    this.retryElsewhere(c, g?.leaderAddress() ?? null);
  }

  private retryElsewhere(c: number, hint: string | null): void {
    const cl = this.clients[c]!;
    cl.target = hint && this.cluster.servers.has(hint) && this.rng.chance(0.8) ? hint : this.rng.pick(this.cluster.ids());
    this.world.after(1 + this.rng.int(TICK_MS), () => this.clientStep(c));
  }

  /** Ends the client's current op; `out === undefined` = outcome unknown (a failed read is dropped). */
  private finishOp(c: number, out: HistoryOp['output']): void {
    const cl = this.clients[c]!;
    const h = cl.pending;
    if (!h) return;
    cl.pending = null;
    cl.done++;
    if (out !== undefined) {
      h.ret = this.world.now;
      h.output = out;
    }
    if (!(h.op.kind === 'get' && out === undefined)) this.history.push(h);
    this.hash = (Math.imul(this.hash ^ (this.world.now + c * 7919), 16777619) + (out === undefined ? 1 : 2)) >>> 0;
    this.world.after(this.rng.int(3 * TICK_MS), () => this.clientStep(c));
  }

  result(ok: boolean, error?: string): SimResult {
    const st = this.cluster.stats;
    return {
      seed: this.seed,
      ok,
      error,
      ops: this.history.length,
      unknownOps: this.history.filter((h) => h.ret === Infinity).length,
      ticks: Math.floor(this.world.now / TICK_MS),
      crashes: st.crashes,
      partitions: st.partitions,
      confChanges: st.confChanges,
      diskFailures: st.diskFailures,
      lostWrites: this.cluster.lostWrites(),
      leaderChanges: this.cluster.termsWithLeaders(),
      messages: st.messages,
      events: this.world.events,
      digest: `${this.hash.toString(16)}:${this.world.now}:${st.messages}:${this.history.length}:${this.world.events}`,
    };
  }
}
