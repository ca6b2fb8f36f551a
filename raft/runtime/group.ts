// One Raft group in a process: drives its RawNode from the host's loop, applies committed
// entries to the StateMachine in batches, tracks proposals and reads, compacts the log.
import { type Logger } from '../../common/log.js';
import { StatusCode, TierfsError } from '../../common/status.js';
import { applyConfChange, decodeConfChange, encodeConfChange, isMember } from '../core/confchange.js';
import { ProposalDroppedError, RawNode, type Ready } from '../core/rawnode.js';
import type { MemoryStorage } from '../core/storage.js';
import { ConfChangeType, type ConfState, type Entry, EntryType, type Message, MsgType, StateRole, emptyMessage } from '../core/types.js';
import type { RaftGroup, RaftGroupStatus, StateMachine } from './api.js';
import { type RaftClock, sleepOn } from './env.js';
import type { GroupWrite } from './log-store.js';

export interface GroupEnv {
  self: string;
  logger: Logger;
  electionTicks: number;
  heartbeatTicks: number;
  snapshotThreshold: number;
  leaseRead: boolean;
  clock: RaftClock;
  checkQuorum?: boolean;
  maxInflightMsgs?: number;
  maxEntriesPerMsg?: number;
  /** Asks the host to collect this group's Ready soon. */
  wake(g: GroupNode): void;
  send(g: GroupNode, m: Message): void;
  compact(g: GroupNode, meta: { index: number; term: number; conf: ConfState }): Promise<void>;
}

/** Proposals waiting for commit per group: beyond this, callers get BUSY (back-pressure). */
const MAX_PENDING_PROPOSALS = 65_536;

const notLeader = (hint: string | null, why = 'not the leader') => new TierfsError(StatusCode.NOT_LEADER, why, hint ?? '');

export class GroupNode implements RaftGroup {
  readonly core: RawNode;
  private proposals = new Map<number, { term: number; resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  private readCtx = 0;
  private reads = new Map<string, { resolve: () => void; reject: (e: unknown) => void }>();
  private readsAwaitApply: Array<{ index: number; resolve: () => void }> = [];
  private applyQueue: Entry[][] = [];
  /** Serializes state-machine access: apply batches, snapshot capture and restore take turns (FIFO). */
  private smTurn: Promise<void> = Promise.resolve();
  private applyScheduled = false;
  /** Index of the last entry passed through the apply loop, and the membership at that point. */
  appliedIndex: number;
  appliedConf: ConfState;
  private lastLeader: string | null = null;
  private leaderCbs: Array<(l: string | null) => void> = [];
  private removedCbs: Array<() => void> = [];
  private removedFired = false;
  stopped = false;
  /** A snapshot being installed: the Ready waits for the state machine restore. */
  pendingRestore: Map<number, Buffer[]> = new Map();
  private snapshotsSending = new Set<string>();

  constructor(
    readonly id: string,
    readonly storage: MemoryStorage,
    readonly sm: StateMachine,
    smApplied: number,
    private readonly env: GroupEnv,
  ) {
    this.appliedIndex = Math.max(smApplied, storage.firstIndex() - 1);
    // Membership as of appliedIndex: the snapshot's plus conf changes replayed up to it.
    let conf = storage.snapshotMeta().conf;
    const hi = Math.min(this.appliedIndex, storage.lastIndex());
    if (hi >= storage.firstIndex()) {
      for (const e of storage.entries(storage.firstIndex(), hi + 1, Number.MAX_SAFE_INTEGER)) {
        if (e.type === EntryType.ConfChange) conf = applyConfChange(conf, decodeConfChange(e.data));
      }
    }
    this.appliedConf = conf;
    sm.onFailure?.((err) => {
      env.logger.error({ group: id, err: String(err) }, 'state machine write failed; group stopped');
      this.stop();
    });
    this.core = new RawNode({
      id: env.self,
      storage,
      applied: this.appliedIndex,
      electionTicks: env.electionTicks,
      heartbeatTicks: env.heartbeatTicks,
      leaseRead: env.leaseRead,
      checkQuorum: env.checkQuorum,
      maxInflightMsgs: env.maxInflightMsgs,
      maxEntriesPerMsg: env.maxEntriesPerMsg,
      random: env.clock.random,
    });
  }

  // ---- RaftGroup ----

  isLeader(): boolean {
    return this.core.raft.role === StateRole.Leader;
  }

  leaderAddress(): string | null {
    return this.core.raft.lead || null;
  }

  status(): RaftGroupStatus {
    const r = this.core.raft;
    return {
      id: this.id,
      term: r.term,
      leader: this.leaderAddress(),
      commitIndex: r.log.committed,
      appliedIndex: this.appliedIndex,
      voters: [...r.conf.voters],
      learners: [...r.conf.learners],
      epoch: r.conf.epoch ?? 0,
      unreachable: this.isLeader() ? [...r.prs.values()].filter((pr) => pr.id !== r.id && !pr.isLearner && !pr.recentActive && !pr.activeLastRound).map((pr) => pr.id) : [],
      lastIndex: r.log.lastIndex(),
      matchIndex: this.isLeader() ? Object.fromEntries([...r.prs.values()].filter((pr) => pr.id !== r.id).map((pr) => [pr.id, pr.match])) : {},
    };
  }

  propose(data: Buffer): Promise<unknown> {
    if (this.stopped) return Promise.reject(new TierfsError(StatusCode.UNAVAILABLE, `group ${this.id} is closed`));
    if (!this.isLeader()) return Promise.reject(notLeader(this.leaderAddress()));
    if (this.proposals.size >= MAX_PENDING_PROPOSALS) {
      return Promise.reject(new TierfsError(StatusCode.BUSY, `group ${this.id}: ${MAX_PENDING_PROPOSALS} proposals already waiting for commit; retry later`));
    }
    try {
      const { index, term } = this.core.propose(data);
      this.env.wake(this);
      return new Promise((resolve, reject) => this.proposals.set(index, { term, resolve, reject }));
    } catch (e) {
      return Promise.reject(e instanceof ProposalDroppedError ? notLeader(this.leaderAddress(), e.message) : e);
    }
  }

  readBarrier(): Promise<void> {
    // A stopped group's clock no longer ticks, so its lease would never expire: no reads.
    if (this.stopped) return Promise.reject(new TierfsError(StatusCode.UNAVAILABLE, `group ${this.id} is closed`));
    if (!this.isLeader()) return Promise.reject(notLeader(this.leaderAddress()));
    const ctx = `${this.env.self}/${++this.readCtx}`;
    try {
      this.core.readIndex(Buffer.from(ctx));
    } catch (e) {
      return Promise.reject(e instanceof ProposalDroppedError ? notLeader(this.leaderAddress(), e.message) : e);
    }
    // Under a valid lease the core answers at once: take the answer now rather than from the
    // next Ready, which may wait behind a write in flight. Same read index, same wait for apply.
    const states = this.core.raft.readStates;
    const answered = states[states.length - 1];
    if (answered && answered.context.toString() === ctx) {
      states.pop();
      if (this.appliedIndex >= answered.index) return Promise.resolve();
      this.env.wake(this); // committed entries are waiting to be collected and applied
      return new Promise((resolve) => this.readsAwaitApply.push({ index: answered.index, resolve }));
    }
    this.env.wake(this);
    return new Promise((resolve, reject) => this.reads.set(ctx, { resolve, reject }));
  }

  onLeaderChange(cb: (leader: string | null) => void): void {
    this.leaderCbs.push(cb);
  }

  onRemoved(cb: () => void): void {
    this.removedCbs.push(cb);
  }

  async addPeer(address: string): Promise<void> {
    await this.changeMembership(ConfChangeType.AddLearner, address, (c) => c.voters.includes(address));
  }

  async removePeer(address: string): Promise<void> {
    await this.changeMembership(ConfChangeType.Remove, address, (c) => !isMember(c, address));
  }

  /**
   * Moves leadership to `address`. While a transfer is under way the leader takes no
   * proposals, so it must not last: the core abandons it after one election timeout (as
   * etcd does) and this then fails at once with TIMEOUT, the leader taking writes again.
   * It is asked once; asking again would restart the core's timer and stall writes for good.
   */
  async transferLeader(address: string): Promise<void> {
    if (this.leaderAddress() === address) return;
    if (!this.isLeader()) throw notLeader(this.leaderAddress(), `cannot transfer leadership to ${address}: not the leader`);
    try {
      this.core.transferLeader(address);
    } catch (e) {
      throw e instanceof ProposalDroppedError ? new TierfsError(StatusCode.INVALID_ARGUMENT, e.message) : e;
    }
    this.env.wake(this);
    const clock = this.env.clock;
    // Only a lost election after our step-down can outlast the core's own timeout; cap that too.
    const until = clock.now() + 30_000;
    while (clock.now() < until) {
      await sleepOn(clock, 20);
      const leader = this.leaderAddress();
      if (leader === address) return;
      if (this.isLeader() && this.core.raft.leadTransferee !== address) {
        throw new TierfsError(StatusCode.TIMEOUT, `leadership transfer to ${address} abandoned after an election timeout; still leading`);
      }
      if (!this.isLeader() && leader !== null) throw notLeader(leader, `leadership went to ${leader}, not ${address}`);
    }
    throw new TierfsError(StatusCode.TIMEOUT, `leadership did not move to ${address}`);
  }

  /** Proposes a conf change (retrying while another is pending) and waits until `done(conf)`. */
  private async changeMembership(type: ConfChangeType, node: string, done: (c: ConfState) => boolean): Promise<void> {
    const clock = this.env.clock;
    const until = clock.now() + 60_000;
    let proposed = false;
    while (clock.now() < until) {
      if (done(this.core.raft.conf)) return;
      if (!this.isLeader()) throw notLeader(this.leaderAddress());
      if (!proposed || type !== ConfChangeType.AddLearner || !isMember(this.core.raft.conf, node)) {
        try {
          this.core.proposeConfChange(encodeConfChange({ type, node }));
          proposed = true;
          this.env.wake(this);
        } catch (e) {
          if (!(e instanceof ProposalDroppedError)) throw e;
        }
      }
      await sleepOn(clock, 50);
    }
    throw new TierfsError(StatusCode.TIMEOUT, `membership change of ${node} did not complete within 60 s`);
  }

  // ---- driven by the host ----

  /** Takes the next Ready and what it must persist, or null if nothing to do. */
  collect(): { rd: Ready; write: GroupWrite } | null {
    if (this.stopped || !this.core.hasReady()) return null;
    const prevHs = this.storage.hardState();
    const rd = this.core.ready();
    const mustSync = rd.hardState !== null && (rd.hardState.term !== prevHs.term || rd.hardState.vote !== prevHs.vote);
    return { rd, write: { groupId: this.id, entries: rd.entries, hardState: rd.hardState, hardStateMustSync: mustSync, snapshot: rd.snapshot?.meta ?? null } };
  }

  /**
   * A leader's appends and heartbeats go out while its own write of the same entries is still
   * in flight (Raft thesis §10.2.1): the follower's fsync overlaps the leader's. Safe because
   * nothing a client can observe depends on the leader's copy before it is durable: the core
   * counts the leader's own entries towards commit only once the host reports them persisted
   * (`advance`), so the commit index these messages carry never counts a write in flight.
   * Everything else (votes, append responses, a step-down's messages) waits for the write.
   */
  sendBeforePersist(rd: Ready, hardStateMustSync: boolean): void {
    if (!this.isLeader() || hardStateMustSync || rd.snapshot) return;
    const term = this.core.raft.term;
    const later: Message[] = [];
    for (const m of rd.messages) {
      if ((m.type === MsgType.App || m.type === MsgType.Heartbeat) && m.term === term && m.from === this.env.self) this.env.send(this, m);
      else later.push(m);
    }
    rd.messages = later;
  }

  /** The Ready's writes are durable: update memory, send, queue applies. */
  afterPersist(rd: Ready): void {
    if (rd.snapshot) this.storage.applySnapshot(rd.snapshot.meta);
    if (rd.entries.length > 0) this.storage.append(rd.entries);
    if (rd.hardState) this.storage.setHardState(rd.hardState);
    this.core.advance(rd);
    for (const m of rd.messages) this.env.send(this, m);
    for (const rs of rd.readStates) {
      const w = this.reads.get(rs.context.toString());
      if (!w) continue;
      this.reads.delete(rs.context.toString());
      this.readsAwaitApply.push({ index: rs.index, resolve: w.resolve });
    }
    if (rd.committedEntries.length > 0) this.applyQueue.push(rd.committedEntries);
    this.releaseReads();
    this.kickApply();
    this.checkLeadership();
  }

  private checkLeadership(): void {
    const leader = this.leaderAddress();
    if (leader !== this.lastLeader) {
      const wasMe = this.lastLeader === this.env.self;
      this.lastLeader = leader;
      if (wasMe) this.failPending('leadership lost before commit; the entry may still commit');
      for (const cb of this.leaderCbs) cb(leader);
    }
    if (this.core.raft.isRemoved() && !this.removedFired) {
      this.removedFired = true;
      this.failPending('removed from the group');
      for (const cb of this.removedCbs) cb();
    }
  }

  failPending(why: string): void {
    for (const p of this.proposals.values()) p.reject(notLeader(this.leaderAddress(), why));
    this.proposals.clear();
    for (const r of this.reads.values()) r.reject(notLeader(this.leaderAddress(), why));
    this.reads.clear();
  }

  private releaseReads(): void {
    if (this.readsAwaitApply.length === 0) return;
    const still = [];
    for (const r of this.readsAwaitApply) {
      if (this.appliedIndex >= r.index) r.resolve();
      else still.push(r);
    }
    this.readsAwaitApply = still;
  }

  /** Runs `fn` when the state machine is free; callers queue in order, so nobody starves. */
  withStateMachine<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.smTurn.then(fn);
    this.smTurn = run.then(
      () => {},
      () => {},
    );
    return run;
  }

  private kickApply(): void {
    if (this.applyScheduled || this.stopped) return;
    this.applyScheduled = true;
    void this.withStateMachine(async () => {
      this.applyScheduled = false;
      await this.applyOnce();
    }).then(
      () => {
        if (this.applyQueue.length > 0) this.kickApply();
      },
      (err: unknown) => {
        this.env.logger.error({ group: this.id, err: String(err) }, 'apply loop failed; group stopped');
        this.stop();
      },
    );
  }

  /** Resolves when no state-machine work (apply, snapshot, restore) is running or queued. */
  async idle(): Promise<void> {
    let turn: Promise<void>;
    do {
      turn = this.smTurn;
      await turn;
    } while (turn !== this.smTurn);
  }

  private async applyOnce(): Promise<void> {
    if (this.applyQueue.length > 0 && !this.stopped) {
      const ents = this.applyQueue.splice(0, this.applyQueue.length).flat().filter((e) => e.index > this.appliedIndex);
      let batch: Entry[] = [];
      const flush = async () => {
        if (batch.length === 0) return;
        const results = await this.sm.apply(batch.map((e) => ({ index: e.index, term: e.term, data: e.data })));
        batch.forEach((e, i) => this.resolveProposal(e, results[i]));
        batch = [];
      };
      try {
        for (const e of ents) {
          if (e.type === EntryType.ConfChange || e.data.length === 0) {
            await flush();
            if (e.type === EntryType.ConfChange) this.appliedConf = applyConfChange(this.appliedConf, decodeConfChange(e.data));
            this.resolveProposal(e, undefined);
            this.appliedIndex = e.index;
          } else {
            batch.push(e);
          }
        }
        await flush();
        if (ents.length > 0) this.appliedIndex = Math.max(this.appliedIndex, ents[ents.length - 1]!.index);
      } catch (err) {
        this.env.logger.error({ group: this.id, err: String(err) }, 'state machine apply failed; group stopped');
        this.stopped = true;
        this.failPending(`apply failed: ${String(err)}`);
        return;
      }
      this.releaseReads();
      await this.maybeCompact();
    }
  }

  private resolveProposal(e: Entry, result: unknown): void {
    const p = this.proposals.get(e.index);
    if (!p) return;
    this.proposals.delete(e.index);
    if (p.term === e.term) p.resolve(result);
    else p.reject(notLeader(this.leaderAddress(), 'the entry was overwritten by a new leader'));
  }

  private async maybeCompact(): Promise<void> {
    if (this.stopped) return;
    const first = this.storage.firstIndex();
    if (this.appliedIndex - first + 1 <= this.env.snapshotThreshold || this.appliedIndex > this.storage.lastIndex()) return;
    // No further than the state machine's own index: it never sees no-ops and membership
    // entries, and a restart refuses a state machine behind the compacted log.
    const index = Math.min(this.appliedIndex, await this.sm.appliedIndex());
    if (index < first || this.stopped) return;
    let conf = this.storage.snapshotMeta().conf;
    for (const e of this.storage.entries(first, index + 1, Number.MAX_SAFE_INTEGER)) {
      if (e.type === EntryType.ConfChange) conf = applyConfChange(conf, decodeConfChange(e.data));
    }
    const meta = { index, term: this.storage.term(index), conf };
    // The state machine must hold what the log drops even after a power loss.
    await this.sm.flush?.();
    await this.env.compact(this, meta);
  }

  /** A snapshot for a follower: the state machine's, labelled with the log position it covers. */
  snapshotForSend(): Promise<{ meta: { index: number; term: number; conf: ConfState }; chunks: AsyncIterable<Buffer> }> {
    // Taken between apply batches, so the state machine sits exactly at appliedIndex.
    return this.withStateMachine(async () => {
      const s = await this.sm.snapshot();
      // Entries between the state machine's index and ours are no-ops/conf changes: same state.
      const index = Math.max(s.index, this.appliedIndex);
      const term = index === s.index && s.term > 0 ? s.term : this.storage.term(index);
      return { meta: { index, term, conf: this.appliedConf }, chunks: s.chunks };
    });
  }

  /** Snapshot sends run one per peer at a time; the core learns the outcome. */
  startSnapshotSend(m: Message, send: (m: Message, chunks: AsyncIterable<Buffer>) => Promise<boolean>): void {
    if (this.snapshotsSending.has(m.to)) return;
    this.snapshotsSending.add(m.to);
    void (async () => {
      let ok = false;
      try {
        const s = await this.snapshotForSend();
        ok = await send({ ...m, snapshot: { meta: s.meta } }, s.chunks);
      } catch (e) {
        this.env.logger.warn({ group: this.id, to: m.to, err: String(e) }, 'snapshot send failed');
      }
      this.snapshotsSending.delete(m.to);
      if (this.stopped) return;
      this.core.step({ ...emptyMessage(MsgType.SnapStatus, this.env.self, m.to), reject: !ok });
      this.env.wake(this);
    })();
  }

  /** Installs a received snapshot into the state machine; call inside withStateMachine. */
  async restoreSnapshot(meta: { index: number; term: number }, chunks: Buffer[]): Promise<void> {
    async function* iter() {
      for (const c of chunks) yield c;
    }
    // The caller holds the state-machine turn (see RaftHost.installSnapshot).
    this.applyQueue = [];
    await this.sm.restore(meta.index, meta.term, iter());
    this.appliedIndex = meta.index;
    for (const [index, p] of this.proposals) {
      if (index <= meta.index) {
        this.proposals.delete(index);
        p.reject(notLeader(this.leaderAddress(), 'replaced by a snapshot; outcome unknown'));
      }
    }
  }

  stop(): void {
    this.stopped = true;
    this.failPending('group closed');
  }
}
