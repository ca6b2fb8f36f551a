// The state the Raft algorithm works on, and the mechanics every role shares: role changes,
// sending appends and heartbeats, commit counting, reads, membership. raft.ts holds the
// message handling on top of it (etcd's raft.go, split in two to stay readable).
import { applyConfChange, decodeConfChange, isMember } from './confchange.js';
import { RaftLog } from './log.js';
import { Progress } from './progress.js';
import { committedIndex } from './quorum.js';
import { ReadOnlyQueue } from './readonly.js';
import { CompactedError, type LogStorage } from './storage.js';
import {
  type ConfState,
  type Entry,
  EntryType,
  type Message,
  MsgType,
  NONE,
  type NodeId,
  type ReadState,
  StateRole,
  emptyMessage,
  invariant,
} from './types.js';

export interface RaftConfig {
  id: NodeId;
  storage: LogStorage;
  /** Index the state machine has durably applied (replay starts after it). */
  applied?: number;
  electionTicks?: number;
  heartbeatTicks?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  /** Serve reads from a leader lease (needs checkQuorum; see raft/README.md for the clock assumption). */
  leaseRead?: boolean;
  maxSizePerMsg?: number;
  maxEntriesPerMsg?: number;
  maxInflightMsgs?: number;
  /** Leader promotes a learner once its log is within this many entries of the leader's. */
  promoteLag?: number;
  /** Deterministic randomness in [0,1) for election timeouts. */
  random: () => number;
}

export class ProposalDroppedError extends Error {
  override name = 'ProposalDroppedError';
}

export abstract class RaftState {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  role: StateRole = StateRole.Follower;
  readonly log: RaftLog;
  conf: ConfState;
  /** Index up to which committed conf changes are reflected in `conf`. */
  protected confApplied: number;
  /** Number of conf changes applied (epoch). */
  confEpoch = 0;
  readonly prs = new Map<NodeId, Progress>();
  protected votes = new Map<NodeId, boolean>();
  msgs: Message[] = [];
  readStates: ReadState[] = [];
  protected readonly readOnly = new ReadOnlyQueue();
  protected pendingReads: Buffer[] = [];

  protected electionElapsed = 0;
  protected heartbeatElapsed = 0;
  /** Ticks since we last heard from a leader (or started); votes are ignored inside this lease. */
  protected ticksSinceLeader = 0;
  protected randomizedElectionTimeout = 0;
  leadTransferee: NodeId = NONE;
  pendingConfIndex = 0;
  /** Local clock in ticks, for the leader lease. */
  protected now = 0;
  /** Per follower: the leader tick of the newest heartbeat it acknowledged. */
  protected readonly ackedSendTick = new Map<NodeId, number>();
  /** Leader has entries to broadcast at the next ready (proposals are batched). */
  protected needBroadcast = false;
  /** The commit index advanced: every follower hears of it at the next flushBroadcast. */
  protected needCommitBroadcast = false;

  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly leaseRead: boolean;
  protected readonly maxSizePerMsg: number;
  protected readonly maxEntriesPerMsg: number;
  protected readonly maxInflight: number;
  protected readonly promoteLag: number;
  protected readonly random: () => number;

  constructor(cfg: RaftConfig) {
    this.id = cfg.id;
    this.electionTicks = cfg.electionTicks ?? 10;
    this.heartbeatTicks = cfg.heartbeatTicks ?? 1;
    invariant(this.heartbeatTicks < this.electionTicks, 'heartbeatTicks must be below electionTicks');
    this.preVote = cfg.preVote ?? true;
    this.checkQuorum = cfg.checkQuorum ?? true;
    this.leaseRead = (cfg.leaseRead ?? false) && this.checkQuorum;
    this.maxSizePerMsg = cfg.maxSizePerMsg ?? 1024 * 1024;
    this.maxEntriesPerMsg = cfg.maxEntriesPerMsg ?? 4096;
    this.maxInflight = cfg.maxInflightMsgs ?? 64;
    this.promoteLag = cfg.promoteLag ?? 16;
    this.random = cfg.random;
    this.log = new RaftLog(cfg.storage, cfg.applied ?? 0);
    const hs = cfg.storage.hardState();
    this.term = hs.term;
    this.vote = hs.vote;
    const snap = cfg.storage.snapshotMeta();
    this.conf = snap.conf;
    this.confApplied = snap.index;
    this.applyCommittedConfChanges();
    this.rebuildProgress();
    this.becomeFollower(this.term, NONE);
  }


  // ---- roles ----

  protected resetTerm(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.electionTicks + Math.floor(this.random() * this.electionTicks);
    this.votes = new Map();
    this.leadTransferee = NONE;
    this.readOnly.reset();
    this.pendingReads = [];
    this.ackedSendTick.clear();
    const last = this.log.lastIndex();
    for (const pr of this.prs.values()) {
      pr.becomeProbe();
      pr.match = pr.id === this.id ? this.log.stableLastIndex() : 0;
      pr.next = last + 1;
      pr.recentActive = pr.id === this.id;
      pr.activeLastRound = true; // a new term: give every peer a full round before calling it unreachable
    }
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.resetTerm(term);
    this.role = StateRole.Follower;
    this.lead = lead;
    if (lead !== NONE) this.ticksSinceLeader = 0;
  }

  protected becomeCandidate(): void {
    invariant(this.role !== StateRole.Leader, 'leader cannot become candidate');
    this.resetTerm(this.term + 1);
    this.vote = this.id;
    this.role = StateRole.Candidate;
  }

  protected becomePreCandidate(): void {
    invariant(this.role !== StateRole.Leader, 'leader cannot become pre-candidate');
    // Pre-vote does not bump the term or reset the vote.
    this.votes = new Map();
    this.lead = NONE;
    this.role = StateRole.PreCandidate;
  }

  protected becomeLeader(): void {
    invariant(this.role !== StateRole.Follower, 'follower cannot become leader directly');
    this.resetTerm(this.term);
    this.lead = this.id;
    this.role = StateRole.Leader;
    this.ticksSinceLeader = 0;
    const self = this.prs.get(this.id);
    if (self) self.becomeReplicate();
    // Conservatively forbid conf changes until everything in our log is committed.
    this.pendingConfIndex = this.log.lastIndex();
    // The no-op entry: commits earlier terms' entries by committing one of this term (§5.4.2).
    this.appendEntries([{ term: this.term, index: this.log.lastIndex() + 1, type: EntryType.Normal, data: Buffer.alloc(0) }]);
  }


  // ---- replication ----

  /**
   * The leader's own copy counts towards commit only once it is durable (`localStable`), as
   * a follower's counts once it acknowledged its write: the runtime sends appends while its
   * own write is in flight and may hand out the next Ready before that write is done, so a
   * commit index counting an in-flight copy could reach a follower that applies an entry one
   * crash could still take away from the majority.
   */
  protected appendEntries(ents: Entry[]): void {
    this.log.append(ents);
    this.needBroadcast = true;
  }

  /** The runtime persisted our log up to `index` (entries of the term they were appended in). */
  localStable(index: number): void {
    if (this.role !== StateRole.Leader) return;
    const self = this.prs.get(this.id);
    if (self && self.maybeUpdate(index) && this.maybeCommit()) this.bcastCommit();
  }

  /** Sends pending proposals to every follower; called when a Ready is collected so proposals batch. */
  flushBroadcast(): void {
    if (!this.needBroadcast) return;
    this.needBroadcast = false;
    const commit = this.needCommitBroadcast;
    this.needCommitBroadcast = false;
    if (this.role !== StateRole.Leader) return;
    for (const id of this.prs.keys()) {
      if (id === this.id) continue;
      let sent = false;
      while (this.maybeSendAppend(id, false)) sent = true; // pipeline
      // Appends carry the commit index; only a follower that got none needs an empty one.
      if (commit && !sent) this.sendAppend(id, true);
    }
  }

  /**
   * Announces a commit advance. Not at once: every append response that advances the commit
   * would send an empty append to every follower (and get a reply each). Deferred to the next
   * Ready, one announcement covers all advances of that turn and usually rides on the appends
   * of the proposals batched meanwhile. Applying on the leader does not wait for it.
   */
  protected bcastCommit(): void {
    this.needCommitBroadcast = true;
    this.needBroadcast = true;
  }

  protected bcastAppend(): void {
    for (const id of this.prs.keys()) if (id !== this.id) this.sendAppend(id, true);
  }

  protected sendAppend(to: NodeId, sendIfEmpty: boolean): void {
    this.maybeSendAppend(to, sendIfEmpty);
  }

  protected maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    let prevTerm: number;
    let ents: Entry[];
    try {
      prevTerm = this.log.term(prevIndex);
      const hi = Math.min(this.log.lastIndex() + 1, pr.next + this.maxEntriesPerMsg);
      ents = this.log.slice(pr.next, hi, this.maxSizePerMsg);
    } catch (e) {
      if (!(e instanceof CompactedError)) throw e;
      return this.sendSnapshot(pr);
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    this.send({ ...emptyMessage(MsgType.App, to), index: prevIndex, logTerm: prevTerm, entries: ents, commit: this.log.committed });
    pr.sentEntries(ents.length, prevIndex + ents.length);
    return true;
  }

  protected sendSnapshot(pr: Progress): boolean {
    if (!pr.recentActive) return false;
    // The runtime replaces this metadata with a fresh state-machine snapshot (index >= this one).
    const meta = this.log.storage.snapshotMeta();
    this.send({ ...emptyMessage(MsgType.Snap, pr.id), snapshot: { meta } });
    pr.becomeSnapshot(meta.index);
    return true;
  }

  protected bcastHeartbeat(context?: Buffer): void {
    for (const pr of this.prs.values()) {
      if (pr.id === this.id) continue;
      this.send({
        ...emptyMessage(MsgType.Heartbeat, pr.id),
        commit: Math.min(pr.match, this.log.committed),
        index: this.now,
        context: context ?? this.readOnly.lastContext(),
      });
    }
  }

  protected maybeCommit(): boolean {
    const ci = committedIndex(this.conf.voters, (id) => this.prs.get(id)?.match ?? 0);
    if (this.conf.voters.length === 0) return false;
    // Only entries of the current term commit by counting replicas (§5.4.2).
    if (!this.log.maybeCommit(ci, this.term)) return false;
    this.onCommitAdvanced();
    return true;
  }

  protected onCommitAdvanced(): void {
    this.applyCommittedConfChanges();
    if (this.role === StateRole.Leader && this.pendingReads.length > 0 && this.committedInTerm()) {
      const reads = this.pendingReads;
      this.pendingReads = [];
      for (const ctx of reads) this.serveRead(ctx);
    }
  }


  // ---- reads ----

  protected committedInTerm(): boolean {
    return this.log.termOrZero(this.log.committed) === this.term;
  }

  protected serveRead(context: Buffer): void {
    if (this.conf.voters.length <= 1 && this.conf.voters[0] === this.id) {
      this.readStates.push({ index: this.log.committed, context });
      return;
    }
    if (this.leaseRead && this.leadTransferee === NONE && this.leaseValid()) {
      this.readStates.push({ index: this.log.committed, context });
      return;
    }
    this.readOnly.add(this.log.committed, context, this.id);
    this.bcastHeartbeat(context);
  }

  /** The lease: a quorum acked heartbeats sent at tick t, so no other leader can exist before t + electionTicks. */
  leaseValid(): boolean {
    if (this.role !== StateRole.Leader) return false;
    const sent = this.conf.voters.map((id) => (id === this.id ? this.now : (this.ackedSendTick.get(id) ?? -Infinity)));
    sent.sort((a, b) => b - a);
    const start = sent[Math.floor(this.conf.voters.length / 2)] ?? -Infinity;
    // Two ticks of margin cover tick granularity on both sides.
    return this.now < start + this.electionTicks - 2;
  }

  protected voterAcks(acks: Set<NodeId>): number {
    let n = 0;
    for (const id of acks) if (this.conf.voters.includes(id)) n++;
    return n;
  }


  // ---- membership ----

  protected promotable(): boolean {
    return this.conf.voters.includes(this.id) && this.log.pendingSnapshot === null;
  }

  /** The node is no longer part of the group's configuration. */
  isRemoved(): boolean {
    return this.conf.voters.length + this.conf.learners.length > 0 && !isMember(this.conf, this.id);
  }

  /** Conf changes take effect when committed; every node applies them at the same log index. */
  protected applyCommittedConfChanges(): void {
    if (this.confApplied >= this.log.committed) return;
    const lo = Math.max(this.confApplied + 1, this.log.firstIndex());
    let conf = this.conf;
    let changed = false;
    if (lo <= this.log.committed) {
      for (const e of this.log.slice(lo, this.log.committed + 1, Number.MAX_SAFE_INTEGER)) {
        if (e.type !== EntryType.ConfChange) continue;
        conf = applyConfChange(conf, decodeConfChange(e.data));
        this.confEpoch++;
        changed = true;
      }
    }
    this.confApplied = this.log.committed;
    if (changed) this.setConf(conf, this.log.committed);
  }

  protected setConf(conf: ConfState, at: number): void {
    this.conf = conf;
    this.confApplied = Math.max(this.confApplied, at);
    this.rebuildProgress();
    if (this.role === StateRole.Leader) {
      if (!this.conf.voters.includes(this.id)) {
        this.becomeFollower(this.term, NONE); // removed or demoted leader steps down
        return;
      }
      if (this.leadTransferee !== NONE && !this.conf.voters.includes(this.leadTransferee)) this.leadTransferee = NONE;
      if (this.maybeCommit()) this.bcastAppend();
      this.needBroadcast = true;
    }
  }

  protected rebuildProgress(): void {
    const members = new Set([...this.conf.voters, ...this.conf.learners]);
    for (const id of [...this.prs.keys()]) {
      if (members.has(id)) continue;
      // Best effort: one last append carrying the commit lets a removed follower learn it was removed.
      if (this.role === StateRole.Leader && id !== this.id) this.maybeSendAppend(id, true);
      this.prs.delete(id);
    }
    const last = this.log.lastIndex();
    for (const id of members) {
      const learner = this.conf.learners.includes(id);
      const pr = this.prs.get(id);
      if (pr) pr.isLearner = learner;
      else {
        const p = new Progress(id, last + 1, this.maxInflight, learner);
        if (id === this.id) p.match = this.log.stableLastIndex();
        p.recentActive = true; // give new members a round before check-quorum counts them
        this.prs.set(id, p);
      }
    }
  }


  // ---- output ----

  protected send(m: Message): void {
    m.from = this.id;
    // Vote messages carry their term explicitly (a pre-vote uses the future term).
    if (m.term === 0 && m.type !== MsgType.PreVote && m.type !== MsgType.PreVoteResp && m.type !== MsgType.VoteResp) m.term = this.term;
    this.msgs.push(m);
  }
}
