// A simulated cluster of servers, each a real RaftHost (raft/runtime) hosting one group over
// a simulated network and two simulated disks (the Raft log and the application's state, as
// in a daemon), with a state machine the caller provides. Injects faults (partitions, leader
// isolation, crashes that lose unsynced writes, failing and slow disks, message loss and
// duplication, membership changes) and checks Raft's safety properties after every event.
import { type Logger, silentLogger } from '../../common/log.js';
import { StateRole } from '../core/types.js';
import type { LogEntryForApply, StateMachine } from '../runtime/api.js';
import type { KvOp, KvRange, SnapshotStaging, TransportHandlers } from '../runtime/env.js';
import type { GroupNode } from '../runtime/group.js';
import { RaftHost } from '../runtime/host.js';
import { type DiskFaults, SimDisk, type SimDiskHandle } from './disk.js';
import { SimNetwork } from './network.js';
import type { Prng } from './prng.js';
import { SimTransport } from './transport.js';
import type { SimWorld } from './world.js';

export class InvariantViolation extends Error {
  override name = 'InvariantViolation';
}

export const GROUP_ID = 'g1';

/** What the cluster needs from the application on top of Raft. */
export interface SimApp {
  /** Opens (loads) the application's state machine from its disk, for a new incarnation. */
  open(serverId: string, disk: SimDiskHandle<string>): Promise<StateMachine>;
  /** The replica's state as a string, compared across members once converged. */
  digest(disk: SimDisk<string>): string;
}

export interface ClusterOptions {
  size: number;
  tickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
  leaseRead: boolean;
  checkQuorum: boolean;
  snapshotThreshold: number;
  maxInflightMsgs: number;
  maxServers: number;
  /** For the simulator's own tests: disks that acknowledge fsync without doing it. */
  lyingDisks?: boolean;
}

export class SimServer {
  incarnation = 0;
  alive = false;
  removed = false;
  host: RaftHost | null = null;
  group: GroupNode | null = null;
  sm: StateMachine | null = null;
  handlers: TransportHandlers | null = null;

  constructor(
    readonly id: string,
    readonly logDisk: SimDisk<Buffer>,
    readonly smDisk: SimDisk<string>,
  ) {}

  isLeader(): boolean {
    return this.alive && this.group !== null && !this.group.stopped && this.group.isLeader();
  }
}

/** Staged snapshots live on the server's log disk, written with sync like the file they replace. */
class SimStaging implements SnapshotStaging {
  constructor(private readonly disk: SimDiskHandle<Buffer>) {}
  private range(groupId: string): KvRange {
    return { gte: `x/${groupId}/`, lt: `x/${groupId}/~` };
  }
  async write(groupId: string, chunks: Buffer[]): Promise<void> {
    const ops: Array<KvOp<Buffer>> = [];
    for await (const key of this.disk.keys(this.range(groupId))) ops.push({ type: 'del', key });
    chunks.forEach((c, i) => ops.push({ type: 'put', key: `x/${groupId}/${String(i).padStart(8, '0')}`, value: c }));
    await this.disk.batch(ops, { sync: true });
  }
  async *read(groupId: string): AsyncGenerator<Buffer> {
    for await (const v of this.disk.values(this.range(groupId))) yield v;
  }
  async remove(groupId: string): Promise<void> {
    await this.disk.clear(this.range(groupId));
  }
}

export class SimCluster {
  readonly servers = new Map<string, SimServer>();
  readonly net: SimNetwork;
  readonly stats = { crashes: 0, partitions: 0, confChanges: 0, diskFailures: 0, messages: 0 };
  /** The leader of the previous term that had one (clients with stale caches target it). */
  formerLeader: string | null = null;
  private nextId: number;
  private readonly log: Logger = silentLogger;
  private readonly leaderOfTerm = new Map<number, string>();
  private readonly committedTerm = new Map<number, number>();
  private readonly appliedEntry = new Map<number, { term: number; data: Buffer }>();
  private readonly checkedCommit = new Map<string, number>();
  private readonly leaderSeen = new Set<string>();
  private violation: InvariantViolation | null = null;
  private diskFaults: DiskFaults;

  constructor(
    readonly world: SimWorld,
    private readonly rng: Prng,
    readonly opts: ClusterOptions,
    private readonly app: SimApp,
  ) {
    this.net = new SimNetwork(rng, {
      lossRate: rng.chance(0.5) ? rng.next() * 0.08 : 0,
      dupRate: rng.chance(0.5) ? rng.next() * 0.05 : 0,
      minDelay: 1,
      maxDelay: 2 + rng.int(12),
    });
    this.diskFaults = { minWriteMs: 0.1, maxWriteMs: 0.5 + rng.next() * 3, slowRate: rng.chance(0.5) ? rng.next() * 0.05 : 0, failing: false, ignoreSync: opts.lyingDisks };
    const ids = Array.from({ length: opts.size }, (_, i) => `n${i + 1}`);
    this.nextId = opts.size + 1;
    for (const id of ids) {
      const s = this.addServer(id);
      world.at(rng.int(opts.tickMs), () => this.start(s, { peers: ids }));
    }
  }

  private addServer(id: string): SimServer {
    const s = new SimServer(id, new SimDisk<Buffer>(this.world, this.rng, { ...this.diskFaults }), new SimDisk<string>(this.world, this.rng, { ...this.diskFaults }));
    this.servers.set(id, s);
    return s;
  }

  /** Throws the first invariant violation seen (also ones found inside async callbacks). */
  check(): void {
    if (this.violation) throw this.violation;
    for (const s of this.servers.values()) this.checkServer(s);
  }

  private fail(msg: string): never {
    this.violation ??= new InvariantViolation(msg);
    throw this.violation;
  }

  /**
   * Starts an incarnation: a RaftHost over the server's disks, its state machine, the group.
   * `create` bootstraps the group (peers) or joins it (join) the first time.
   */
  private async boot(s: SimServer, create?: { peers: string[]; join?: boolean }): Promise<void> {
    if (s.alive || s.removed) return;
    const inc = ++s.incarnation;
    s.alive = true;
    const alive = () => s.alive && s.incarnation === inc;
    const logDisk = s.logDisk.open();
    const smDisk = s.smDisk.open();
    const o = this.opts;
    const host = await RaftHost.open({
      dataDir: `/sim/${s.id}`,
      selfAddress: s.id,
      logger: this.log,
      tickMs: o.tickMs,
      electionTicks: o.electionTicks,
      heartbeatTicks: o.heartbeatTicks,
      snapshotThreshold: o.snapshotThreshold,
      leaseRead: o.leaseRead,
      checkQuorum: o.checkQuorum,
      maxInflightMsgs: o.maxInflightMsgs,
      maxEntriesPerMsg: 64,
      clock: this.world.clock(alive),
      transport: (self, handlers) => {
        s.handlers = handlers;
        return new SimTransport(this.world, this.net, { handlersOf: (id) => this.handlersOf(id) }, self, handlers, alive, () => this.stats.messages++);
      },
      storage: { log: logDisk, staging: new SimStaging(logDisk) },
    });
    if (!alive()) return;
    s.host = host;
    host.onGroupRemoved(() => {
      // The owner (MDS topology) would remove the group here; the server leaves the run.
      s.removed = true;
      this.crash(s);
    });
    const sm = this.recording(s.id, await this.app.open(s.id, smDisk));
    if (!alive()) return;
    s.sm = sm;
    const exists = (await host.listGroups()).includes(GROUP_ID);
    if (!alive()) return;
    const g = exists ? await host.openGroup(GROUP_ID, sm) : create ? await host.createGroup(GROUP_ID, { peers: create.peers, join: create.join, stateMachine: sm }) : null;
    if (!alive()) return;
    // A joiner that crashed before its group was durable is simply not a member yet.
    s.group = g as GroupNode | null;
    if (s.group) this.checkedCommit.set(s.id, Math.min(this.checkedCommit.get(s.id) ?? 0, s.group.core.raft.log.committed));
  }

  private handlersOf(id: string): TransportHandlers | null {
    const s = this.servers.get(id);
    return s?.alive ? s.handlers : null;
  }

  /** Every apply passes here: an index must carry the same entry on every server. */
  private recording(id: string, sm: StateMachine): StateMachine {
    return {
      apply: (entries: LogEntryForApply[]) => {
        for (const e of entries) {
          const prev = this.appliedEntry.get(e.index);
          if (!prev) this.appliedEntry.set(e.index, { term: e.term, data: e.data });
          else if (prev.term !== e.term || !prev.data.equals(e.data)) this.fail(`state machine safety: ${id} applied (${e.index},${e.term}) but another server applied (${e.index},${prev.term})`);
        }
        return sm.apply(entries);
      },
      appliedIndex: () => sm.appliedIndex(),
      snapshot: () => sm.snapshot(),
      restore: (i, t, c) => sm.restore(i, t, c),
      flush: sm.flush ? () => sm.flush!() : undefined,
      onFailure: sm.onFailure ? (cb) => sm.onFailure!(cb) : undefined,
    };
  }

  /** kill -9 (or power loss): memory is gone; each disk keeps its durable part and maybe some of the rest. */
  crash(s: SimServer): void {
    if (!s.alive) return;
    s.alive = false;
    s.host = null;
    s.group = null;
    s.sm = null;
    s.handlers = null;
    s.logDisk.crash();
    s.smDisk.crash();
  }

  restart(s: SimServer): void {
    this.start(s);
  }

  /** A server that cannot start from what its disks hold has lost acknowledged state. */
  private start(s: SimServer, create?: { peers: string[]; join?: boolean }): void {
    this.boot(s, create).catch((e: unknown) => {
      this.violation ??= new InvariantViolation(`${s.id} failed to start: ${e instanceof Error ? e.message : String(e)}`);
    });
  }

  leader(): SimServer | null {
    let best: SimServer | null = null;
    for (const s of this.servers.values()) {
      if (s.isLeader() && (!best || s.group!.core.raft.term > best.group!.core.raft.term)) best = s;
    }
    return best;
  }

  ids(): string[] {
    return [...this.servers.keys()];
  }

  // ---- faults ----

  injectFault(): void {
    const live = [...this.servers.values()].filter((s) => !s.removed);
    const r = this.rng.next();
    if (r < 0.12) {
      // Isolate the leader (Jepsen's favourite): a deposed leader must not serve stale reads.
      const leader = this.leader();
      if (leader) {
        this.net.heal();
        this.net.partition([leader.id], live.map((s) => s.id).filter((id) => id !== leader.id));
        this.stats.partitions++;
      }
    } else if (r < 0.28) {
      this.net.heal();
      const ids = live.map((s) => s.id).sort();
      const side = ids.filter(() => this.rng.chance(0.5));
      if (side.length > 0 && side.length < ids.length) {
        this.net.partition(side, ids.filter((id) => !side.includes(id)));
        this.stats.partitions++;
      }
    } else if (r < 0.4) {
      this.net.heal();
    } else if (r < 0.56) {
      const up = live.filter((s) => s.alive);
      if (up.length === 0) return;
      // Prefer the leader sometimes: crashing it during writes is the interesting case.
      const leader = up.find((s) => s.isLeader());
      const victim = leader && this.rng.chance(0.5) ? leader : this.rng.pick(up);
      this.crash(victim);
      this.stats.crashes++;
      this.world.after(50 + this.rng.int(600), () => this.restart(victim));
    } else if (r < 0.7) {
      // A disk starts failing: the server's writes fail (it stops its groups), then it is restarted.
      const up = live.filter((s) => s.alive);
      if (up.length === 0) return;
      const leader = up.find((s) => s.isLeader());
      const victim = leader && this.rng.chance(0.5) ? leader : this.rng.pick(up);
      const disk = this.rng.chance(0.5) ? victim.logDisk : victim.smDisk;
      disk.faults.failing = true;
      this.stats.diskFailures++;
      this.world.after(10 + this.rng.int(this.rng.chance(0.5) ? 100 : 1500), () => {
        disk.faults.failing = false;
        this.crash(victim);
        this.world.after(50 + this.rng.int(300), () => this.restart(victim));
      });
    } else if (r < 0.77) {
      const s = this.rng.pick(live);
      const slow = this.rng.chance(0.5) ? this.rng.next() * 0.3 : 0;
      s.logDisk.faults.slowRate = slow;
      s.smDisk.faults.slowRate = slow;
    } else if (r < 0.9) {
      this.membershipChange();
    } else {
      this.net.faults.lossRate = this.rng.chance(0.5) ? this.rng.next() * 0.1 : 0;
      this.net.faults.dupRate = this.rng.chance(0.5) ? this.rng.next() * 0.05 : 0;
    }
  }

  private membershipChange(): void {
    const leader = this.leader();
    if (!leader) return;
    const conf = leader.group!.core.raft.conf;
    if (conf.learners.length > 0) return; // a learner is still catching up
    const g = leader.group!;
    if (conf.voters.length > 3 && this.rng.chance(0.5)) {
      const victim = this.rng.pick(conf.voters);
      this.stats.confChanges++;
      g.removePeer(victim).catch(() => {});
    } else if (conf.voters.length < 5 && this.nextId <= this.opts.maxServers) {
      const s = this.addServer(`n${this.nextId++}`);
      this.start(s, { peers: [], join: true });
      this.stats.confChanges++;
      g.addPeer(s.id).catch(() => {});
    }
  }

  /** Heals everything and restarts crashed servers; `converged()` then tells when all caught up. */
  heal(): void {
    this.net.heal();
    this.net.faults.lossRate = 0;
    this.net.faults.dupRate = 0;
    for (const s of this.servers.values()) {
      s.logDisk.faults.slowRate = 0;
      s.smDisk.faults.slowRate = 0;
      s.logDisk.faults.failing = false;
      s.smDisk.faults.failing = false;
      if (!s.alive && !s.removed) this.restart(s);
    }
  }

  /**
   * The end of every run: heal, let the members catch up within `ticks` ticks (checking the
   * invariants after every event), then compare the replicas.
   */
  async healAndConverge(tickMs: number, ticks = 400): Promise<void> {
    this.heal();
    if (!(await this.world.run(this.world.now + ticks * tickMs, () => this.converged(), () => this.check()))) {
      throw new InvariantViolation(`cluster did not converge after healing: ${this.describe()}`);
    }
    // A state machine may write its disk after answering (the metaserver's RecordStore does):
    // compare the disks once every member's writes are done.
    let flushed = false;
    void Promise.all(this.members().map((s) => s.group!.sm.flush?.()))
      .catch(() => undefined)
      .finally(() => (flushed = true));
    if (!(await this.world.run(this.world.now + ticks * tickMs, () => flushed, () => this.check()))) {
      throw new InvariantViolation(`state machines did not finish their writes after converging: ${this.describe()}`);
    }
    this.checkConverged();
  }

  members(): SimServer[] {
    const leader = this.leader();
    if (!leader) return [];
    const conf = leader.group!.core.raft.conf;
    return [...conf.voters, ...conf.learners].map((id) => this.servers.get(id)!).filter(Boolean);
  }

  converged(): boolean {
    const ms = this.members();
    if (ms.length === 0) return false;
    const leader = this.leader()!;
    const commit = leader.group!.core.raft.log.committed;
    return ms.every((s) => s.alive && s.group !== null && !s.group.stopped && s.group.appliedIndex === commit && s.group.core.raft.log.committed === commit);
  }

  describe(): string {
    return [...this.servers.values()]
      .map((s) => {
        const r = s.group?.core.raft;
        if (!s.alive || !r) return `${s.id}:${s.alive ? 'booting' : 'down'}${s.removed ? '(removed)' : ''}`;
        return `${s.id}:${r.role}/t${r.term}/lead=${r.lead}/c${r.log.committed}/last${r.log.lastIndex()}/applied${s.group!.appliedIndex}/first${r.log.firstIndex()}/v=${r.conf.voters.join(',')}/l=${r.conf.learners.join(',')}${s.group!.stopped ? '/stopped' : ''}`;
      })
      .join(' ');
  }

  // ---- invariants ----

  private checkServer(s: SimServer): void {
    const g = s.group;
    if (!s.alive || !g) return;
    const r = g.core.raft;
    if (r.role === StateRole.Leader) {
      const other = this.leaderOfTerm.get(r.term);
      if (other !== undefined && other !== s.id) this.fail(`election safety: ${other} and ${s.id} both lead term ${r.term}`);
      if (other === undefined) {
        const prevTerm = Math.max(0, ...this.leaderOfTerm.keys());
        this.formerLeader = this.leaderOfTerm.get(prevTerm) ?? null;
        this.leaderOfTerm.set(r.term, s.id);
      }
      const key = `${s.id}@${r.term}`;
      if (!this.leaderSeen.has(key)) {
        this.leaderSeen.add(key);
        for (const [i, t] of this.committedTerm) {
          if (i < r.log.firstIndex()) continue;
          if (r.log.termOrZero(i) !== t) this.fail(`leader completeness: leader ${s.id} lacks committed (${i},${t})`);
        }
      }
    }
    // Committed prefix: every server agrees on the term of each committed index, over the
    // persisted part of its log (a follower may learn a commit index past entries it is still
    // writing; it applies them only once they are written).
    const log = r.log;
    const committed = Math.min(log.committed, g.storage.lastIndex());
    const from = Math.max((this.checkedCommit.get(s.id) ?? 0) + 1, log.firstIndex());
    for (let i = from; i <= committed; i++) {
      const t = log.term(i);
      const known = this.committedTerm.get(i);
      if (known === undefined) this.committedTerm.set(i, t);
      else if (known !== t) this.fail(`log matching: ${s.id} committed (${i},${t}), others (${i},${known})`);
    }
    if (committed > (this.checkedCommit.get(s.id) ?? 0)) this.checkedCommit.set(s.id, committed);
  }

  /** After convergence: logs match below any common entry, and replicas hold the same state. */
  checkConverged(): void {
    const ns = this.members();
    for (let a = 0; a < ns.length; a++) {
      for (let b = a + 1; b < ns.length; b++) {
        const la = ns[a]!.group!.core.raft.log;
        const lb = ns[b]!.group!.core.raft.log;
        const lo = Math.max(la.firstIndex(), lb.firstIndex());
        const hi = Math.min(la.lastIndex(), lb.lastIndex());
        let matchedAbove = false;
        for (let i = hi; i >= lo; i--) {
          const same = la.term(i) === lb.term(i);
          if (matchedAbove && !same) this.fail(`log matching: ${ns[a]!.id} and ${ns[b]!.id} differ at ${i} below a match`);
          if (same) matchedAbove = true;
        }
        if (this.app.digest(ns[a]!.smDisk) !== this.app.digest(ns[b]!.smDisk)) {
          this.fail(`replicas ${ns[a]!.id} and ${ns[b]!.id} hold different state after converging`);
        }
      }
    }
  }

  termsWithLeaders(): number {
    return this.leaderOfTerm.size;
  }

  lostWrites(): number {
    let n = 0;
    for (const s of this.servers.values()) n += s.logDisk.lostWrites + s.smDisk.lostWrites;
    return n;
  }
}
