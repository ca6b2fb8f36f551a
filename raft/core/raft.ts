// The Raft state machine (etcd-io/raft shape): messages and ticks in, messages and log changes
// out. No timers, I/O or promises: a deterministic driver (runtime or simulator) feeds it.
import { Progress, ProgressState } from './progress.js';
import { VoteResult, voteResult } from './quorum.js';
import {
  EntryType,
  type Message,
  MsgType,
  NONE,
  type NodeId,
  type Snapshot,
  StateRole,
  emptyMessage,
  invariant,
  voteRespType,
} from './types.js';
import { ProposalDroppedError, RaftState } from './raft-state.js';

export { ProposalDroppedError, type RaftConfig } from './raft-state.js';

const CAMPAIGN_TRANSFER = Buffer.from('transfer');

export class Raft extends RaftState {
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
        for (const pr of this.prs.values()) {
          if (pr.id === this.id) continue;
          pr.activeLastRound = pr.recentActive;
          pr.recentActive = false;
        }
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
        if (this.maybeCommit()) this.bcastCommit();
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
}
