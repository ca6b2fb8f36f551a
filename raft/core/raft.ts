// The Raft state machine (etcd-io/raft shape): messages and ticks in, messages and log changes
// out. No timers, I/O or promises: a deterministic driver (runtime or simulator) feeds it.
import { applyConfChange, decodeConfChange, isMember } from './confchange.js';
import { RaftLog } from './log.js';
import { Progress, ProgressState } from './progress.js';
import { VoteResult, committedIndex, voteResult } from './quorum.js';
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
  type Snapshot,
  StateRole,
  emptyMessage,
  invariant,
  voteRespType,
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

const CAMPAIGN_TRANSFER = Buffer.from('transfer');

export class ProposalDroppedError extends Error {
  override name = 'ProposalDroppedError';
}

export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  role: StateRole = StateRole.Follower;
  readonly log: RaftLog;
  conf: ConfState;
  /** Index up to which committed conf changes are reflected in `conf`. */
  private confApplied: number;
  /** Number of conf changes applied (epoch). */
  confEpoch = 0;
  readonly prs = new Map<NodeId, Progress>();
  private votes = new Map<NodeId, boolean>();
  msgs: Message[] = [];
  readStates: ReadState[] = [];
  private readonly readOnly = new ReadOnlyQueue();
  private pendingReads: Buffer[] = [];

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  /** Ticks since we last heard from a leader (or started); votes are ignored inside this lease. */
  private ticksSinceLeader = 0;
  private randomizedElectionTimeout = 0;
  leadTransferee: NodeId = NONE;
  pendingConfIndex = 0;
  /** Local clock in ticks, for the leader lease. */
  private now = 0;
  /** Per follower: the leader tick of the newest heartbeat it acknowledged. */
  private readonly ackedSendTick = new Map<NodeId, number>();
  /** Leader has entries to broadcast at the next ready (proposals are batched). */
  private needBroadcast = false;

  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly leaseRead: boolean;
  private readonly maxSizePerMsg: number;
  private readonly maxEntriesPerMsg: number;
  private readonly maxInflight: number;
  private readonly promoteLag: number;
  private readonly random: () => number;

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

  // ---- public inputs ----

  tick(): void {
    this.now++;
    if (this.role === StateRole.Leader) {
      this.ticksSinceLeader = 0;
      this.heartbeatElapsed++;
      this.electionElapsed++;
      if (this.electionElapsed >= this.electionTicks) {
        this.electionElapsed = 0;
        if (this.checkQuorum) this.step({ ...emptyMessage(MsgType.CheckQuorum, this.id, this.id) });
        if (this.role === StateRole.Leader && this.leadTransferee !== NONE) this.leadTransferee = NONE; // transfer timed out
      }
      if (this.role === StateRole.Leader && this.heartbeatElapsed >= this.heartbeatTicks) {
        this.heartbeatElapsed = 0;
        this.bcastHeartbeat();
      }
      return;
    }
    this.ticksSinceLeader++;
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.step(emptyMessage(MsgType.Hup, this.id, this.id));
    }
  }

  /** Appends data as a new entry (leader only); returns where it went. Throws ProposalDroppedError otherwise. */
  propose(data: Buffer, type: EntryType = EntryType.Normal): { index: number; term: number } {
    if (this.role !== StateRole.Leader) throw new ProposalDroppedError('not leader');
    if (this.leadTransferee !== NONE) throw new ProposalDroppedError('leadership transfer in progress');
    if (!this.prs.has(this.id)) throw new ProposalDroppedError('leader was removed from the group');
    if (type === EntryType.ConfChange) {
      if (this.pendingConfIndex > this.log.committed) throw new ProposalDroppedError('another membership change is pending');
      // A leader must commit an entry of its term before changing membership (single-server change bug fix).
      if (this.log.termOrZero(this.log.committed) !== this.term) throw new ProposalDroppedError('leader has not committed in its term yet');
    }
    const index = this.log.lastIndex() + 1;
    this.appendEntries([{ term: this.term, index, type, data }]);
    if (type === EntryType.ConfChange) this.pendingConfIndex = index;
    return { index, term: this.term };
  }

  /** Requests a linearizable read point; answered through `readStates` with the same context. */
  readIndex(context: Buffer): void {
    if (this.role !== StateRole.Leader) throw new ProposalDroppedError('not leader');
    if (!this.committedInTerm()) {
      this.pendingReads.push(context);
      return;
    }
    this.serveRead(context);
  }

  transferLeader(target: NodeId): void {
    if (this.role !== StateRole.Leader) throw new ProposalDroppedError('not leader');
    const pr = this.prs.get(target);
    if (!pr || pr.isLearner) throw new ProposalDroppedError(`${target} is not a voter`);
    if (target === this.id) return;
    this.leadTransferee = target;
    this.electionElapsed = 0;
    if (pr.match === this.log.lastIndex()) this.send({ ...emptyMessage(MsgType.TimeoutNow, target) });
    else this.sendAppend(target, true);
  }

  /** Handles a message from a peer or a local event. */
  step(m: Message): void {
    if (m.term === 0) {
      // local message
    } else if (m.term > this.term) {
      if (m.type === MsgType.Vote || m.type === MsgType.PreVote) {
        const force = m.context !== undefined && m.context.equals(CAMPAIGN_TRANSFER);
        const inLease = this.checkQuorum && this.ticksSinceLeader < this.electionTicks;
        if (!force && inLease) return; // a leader is alive: ignore disruptive candidates
      }
      if (m.type === MsgType.PreVote) {
        // never change term on a pre-vote
      } else if (m.type === MsgType.PreVoteResp && !m.reject) {
        // a granted pre-vote carries the future term
      } else if (m.type === MsgType.App || m.type === MsgType.Heartbeat || m.type === MsgType.Snap) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === MsgType.App || m.type === MsgType.Heartbeat)) {
        this.send({ ...emptyMessage(MsgType.AppResp, m.from) }); // tells a stale leader our term
      } else if (m.type === MsgType.PreVote) {
        this.send({ ...emptyMessage(MsgType.PreVoteResp, m.from), term: this.term, reject: true });
      }
      return;
    }

    switch (m.type) {
      case MsgType.Hup:
        if (this.role !== StateRole.Leader && this.promotable()) this.campaign(this.preVote ? 'pre' : 'vote', false);
        return;
      case MsgType.Vote:
      case MsgType.PreVote: {
        const canVote =
          this.vote === m.from || (this.vote === NONE && this.lead === NONE) || (m.type === MsgType.PreVote && m.term > this.term);
        if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
          this.send({ ...emptyMessage(voteRespType(m.type), m.from), term: m.term });
          if (m.type === MsgType.Vote) {
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.send({ ...emptyMessage(voteRespType(m.type), m.from), term: this.term, reject: true });
        }
        return;
      }
    }
    if (this.role === StateRole.Leader) this.stepLeader(m);
    else if (this.role === StateRole.Follower) this.stepFollower(m);
    else this.stepCandidate(m);
  }

  // ---- roles ----

  private resetTerm(term: number): void {
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
      pr.match = pr.id === this.id ? last : 0;
      pr.next = last + 1;
      pr.recentActive = pr.id === this.id;
    }
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.resetTerm(term);
    this.role = StateRole.Follower;
    this.lead = lead;
    if (lead !== NONE) this.ticksSinceLeader = 0;
  }

  private becomeCandidate(): void {
    invariant(this.role !== StateRole.Leader, 'leader cannot become candidate');
    this.resetTerm(this.term + 1);
    this.vote = this.id;
    this.role = StateRole.Candidate;
  }

  private becomePreCandidate(): void {
    invariant(this.role !== StateRole.Leader, 'leader cannot become pre-candidate');
    // Pre-vote does not bump the term or reset the vote.
    this.votes = new Map();
    this.lead = NONE;
    this.role = StateRole.PreCandidate;
  }

  private becomeLeader(): void {
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

  private campaign(kind: 'pre' | 'vote', transfer: boolean): void {
    let term: number;
    let type: MsgType;
    if (kind === 'pre') {
      this.becomePreCandidate();
      type = MsgType.PreVote;
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      type = MsgType.Vote;
      term = this.term;
    }
    this.votes.set(this.id, true);
    const result = voteResult(this.conf.voters, this.votes);
    if (result === VoteResult.Won) {
      if (kind === 'pre') this.campaign('vote', transfer);
      else this.becomeLeader();
      return;
    }
    for (const id of this.conf.voters) {
      if (id === this.id) continue;
      this.send({
        ...emptyMessage(type, id),
        term,
        index: this.log.lastIndex(),
        logTerm: this.log.lastTerm(),
        context: transfer ? CAMPAIGN_TRANSFER : undefined,
      });
    }
  }

  private stepCandidate(m: Message): void {
    const myResp = this.role === StateRole.PreCandidate ? MsgType.PreVoteResp : MsgType.VoteResp;
    switch (m.type) {
      case MsgType.App:
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        return;
      case MsgType.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case MsgType.Snap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case MsgType.PreVoteResp:
      case MsgType.VoteResp: {
        if (m.type !== myResp) return;
        if (!this.votes.has(m.from)) this.votes.set(m.from, !m.reject);
        const r = voteResult(this.conf.voters, this.votes);
        if (r === VoteResult.Won) {
          if (this.role === StateRole.PreCandidate) this.campaign('vote', false);
          else this.becomeLeader();
        } else if (r === VoteResult.Lost) {
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MsgType.App:
        this.electionElapsed = 0;
        this.ticksSinceLeader = 0;
        this.lead = m.from;
        this.handleAppend(m);
        return;
      case MsgType.Heartbeat:
        this.electionElapsed = 0;
        this.ticksSinceLeader = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case MsgType.Snap:
        this.electionElapsed = 0;
        this.ticksSinceLeader = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case MsgType.TimeoutNow:
        if (this.promotable()) this.campaign('vote', true); // leader transfer: skip pre-vote, break leases
        return;
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case MsgType.Beat:
        this.bcastHeartbeat();
        return;
      case MsgType.CheckQuorum: {
        let active = 0;
        for (const id of this.conf.voters) {
          const pr = this.prs.get(id);
          if (pr && (pr.recentActive || id === this.id)) active++;
        }
        if (this.conf.voters.length > 0 && active < Math.floor(this.conf.voters.length / 2) + 1) {
          this.becomeFollower(this.term, NONE);
          return;
        }
        for (const pr of this.prs.values()) if (pr.id !== this.id) pr.recentActive = false;
        return;
      }
    }
    const pr = this.prs.get(m.from);
    if (!pr) return;
    switch (m.type) {
      case MsgType.AppResp: {
        pr.recentActive = true;
        if (m.reject) {
          if (pr.maybeDecrTo(m.index, m.rejectHint)) {
            if (pr.state === ProgressState.Replicate) pr.becomeProbe();
            this.sendAppend(m.from, true);
          }
          return;
        }
        const oldPaused = pr.isPaused();
        if (!pr.maybeUpdate(m.index)) return;
        if (pr.state === ProgressState.Probe) pr.becomeReplicate();
        else if (pr.state === ProgressState.Snapshot && pr.match >= pr.pendingSnapshot) {
          pr.becomeProbe();
          pr.becomeReplicate();
        } else if (pr.state === ProgressState.Replicate) pr.inflights.freeLE(m.index);
        if (this.maybeCommit()) this.bcastAppend();
        else if (oldPaused) this.sendAppend(m.from, false);
        while (this.maybeSendAppend(m.from, false)) {
          /* pipeline as far as inflight limits allow */
        }
        if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
          this.send({ ...emptyMessage(MsgType.TimeoutNow, m.from) });
        }
        this.maybePromoteLearner(pr);
        return;
      }
      case MsgType.HeartbeatResp: {
        pr.recentActive = true;
        pr.probeSent = false;
        if (pr.state === ProgressState.Replicate && pr.inflights.full()) pr.inflights.freeFirstOne();
        // An empty append at `next` makes a follower that lost appends reject, so we re-probe.
        if (pr.match < this.log.lastIndex()) this.sendAppend(m.from, true);
        if (m.index > (this.ackedSendTick.get(m.from) ?? -1)) this.ackedSendTick.set(m.from, m.index);
        if (m.context && m.context.length > 0 && !pr.isLearner) {
          const acks = this.readOnly.acksOf(m.context);
          if (!acks) return;
          acks.add(m.from);
          if (this.voterAcks(acks) >= Math.floor(this.conf.voters.length / 2) + 1) {
            for (const rs of this.readOnly.releaseThrough(m.context)) this.readStates.push(rs);
          }
        }
        return;
      }
      case MsgType.SnapStatus:
        if (pr.state !== ProgressState.Snapshot) return;
        pr.becomeProbe();
        if (!m.reject) pr.probeSent = true; // wait for the follower's answer before probing again
        return;
      case MsgType.Unreachable:
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        return;
    }
  }

  // ---- replication ----

  private appendEntries(ents: Entry[]): void {
    this.log.append(ents);
    const self = this.prs.get(this.id);
    if (self) self.maybeUpdate(this.log.lastIndex());
    this.maybeCommit();
    this.needBroadcast = true;
  }

  /** Sends pending proposals to every follower; called when a Ready is collected so proposals batch. */
  flushBroadcast(): void {
    if (!this.needBroadcast) return;
    this.needBroadcast = false;
    if (this.role !== StateRole.Leader) return;
    for (const id of this.prs.keys()) {
      if (id === this.id) continue;
      while (this.maybeSendAppend(id, false)) {
        /* pipeline */
      }
    }
  }

  private bcastAppend(): void {
    for (const id of this.prs.keys()) if (id !== this.id) this.sendAppend(id, true);
  }

  private sendAppend(to: NodeId, sendIfEmpty: boolean): void {
    this.maybeSendAppend(to, sendIfEmpty);
  }

  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
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

  private sendSnapshot(pr: Progress): boolean {
    if (!pr.recentActive) return false;
    // The runtime replaces this metadata with a fresh state-machine snapshot (index >= this one).
    const meta = this.log.storage.snapshotMeta();
    this.send({ ...emptyMessage(MsgType.Snap, pr.id), snapshot: { meta } });
    pr.becomeSnapshot(meta.index);
    return true;
  }

  private bcastHeartbeat(context?: Buffer): void {
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

  private maybeCommit(): boolean {
    const ci = committedIndex(this.conf.voters, (id) => this.prs.get(id)?.match ?? 0);
    if (this.conf.voters.length === 0) return false;
    // Only entries of the current term commit by counting replicas (§5.4.2).
    if (!this.log.maybeCommit(ci, this.term)) return false;
    this.onCommitAdvanced();
    return true;
  }

  private onCommitAdvanced(): void {
    this.applyCommittedConfChanges();
    if (this.role === StateRole.Leader && this.pendingReads.length > 0 && this.committedInTerm()) {
      const reads = this.pendingReads;
      this.pendingReads = [];
      for (const ctx of reads) this.serveRead(ctx);
    }
  }

  private handleAppend(m: Message): void {
    if (m.index < this.log.committed) {
      this.send({ ...emptyMessage(MsgType.AppResp, m.from), index: this.log.committed });
      return;
    }
    const before = this.log.committed;
    const last = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (last >= 0) {
      this.send({ ...emptyMessage(MsgType.AppResp, m.from), index: last });
    } else {
      // Skip back over our entries of terms newer than the leader's at m.index: they cannot match.
      let hint = Math.min(m.index, this.log.lastIndex());
      while (hint > this.log.committed && this.log.termOrZero(hint) > m.logTerm) hint--;
      this.send({ ...emptyMessage(MsgType.AppResp, m.from), index: m.index, reject: true, rejectHint: hint });
    }
    if (this.log.committed > before) this.onCommitAdvanced();
  }

  private handleHeartbeat(m: Message): void {
    const before = this.log.committed;
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
    if (this.log.committed > before) this.onCommitAdvanced();
    this.send({ ...emptyMessage(MsgType.HeartbeatResp, m.from), index: m.index, context: m.context });
  }

  private handleSnapshot(m: Message): void {
    const snap = m.snapshot;
    invariant(snap, 'snapshot message without snapshot');
    if (this.restore(snap)) {
      this.send({ ...emptyMessage(MsgType.AppResp, m.from), index: this.log.lastIndex() });
    } else {
      this.send({ ...emptyMessage(MsgType.AppResp, m.from), index: this.log.committed });
    }
  }

  private restore(snap: Snapshot): boolean {
    const { meta } = snap;
    if (meta.index <= this.log.committed) return false;
    if (this.log.matchTerm(meta.index, meta.term)) {
      // We already have the snapshot's last entry: just fast-forward the commit.
      this.log.commitTo(meta.index);
      this.onCommitAdvanced();
      return false;
    }
    this.log.restore(snap);
    this.setConf(meta.conf, meta.index);
    return true;
  }

  // ---- reads ----

  private committedInTerm(): boolean {
    return this.log.termOrZero(this.log.committed) === this.term;
  }

  private serveRead(context: Buffer): void {
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

  private voterAcks(acks: Set<NodeId>): number {
    let n = 0;
    for (const id of acks) if (this.conf.voters.includes(id)) n++;
    return n;
  }

  // ---- membership ----

  private promotable(): boolean {
    return this.conf.voters.includes(this.id) && this.log.pendingSnapshot === null;
  }

  /** The node is no longer part of the group's configuration. */
  isRemoved(): boolean {
    return this.conf.voters.length + this.conf.learners.length > 0 && !isMember(this.conf, this.id);
  }

  /** Conf changes take effect when committed; every node applies them at the same log index. */
  private applyCommittedConfChanges(): void {
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

  private setConf(conf: ConfState, at: number): void {
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

  private rebuildProgress(): void {
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
        if (id === this.id) p.match = last;
        p.recentActive = true; // give new members a round before check-quorum counts them
        this.prs.set(id, p);
      }
    }
  }

  private maybePromoteLearner(pr: Progress): void {
    if (!pr.isLearner || this.pendingConfIndex > this.log.committed || !this.committedInTerm()) return;
    // Caught up: it holds everything committed (as a majority does), or is within promoteLag of
    // our last entry. The first criterion keeps promotion possible under sustained load.
    if (pr.match < this.log.committed && pr.match + this.promoteLag < this.log.lastIndex()) return;
    const data = Buffer.alloc(1 + Buffer.byteLength(pr.id));
    data[0] = 1; // ConfChangeType.Promote
    data.write(pr.id, 1, 'utf8');
    this.propose(data, EntryType.ConfChange);
  }

  // ---- output ----

  private send(m: Message): void {
    m.from = this.id;
    // Vote messages carry their term explicitly (a pre-vote uses the future term).
    if (m.term === 0 && m.type !== MsgType.PreVote && m.type !== MsgType.PreVoteResp && m.type !== MsgType.VoteResp) m.term = this.term;
    this.msgs.push(m);
  }
}
