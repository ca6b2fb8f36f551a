// The driver-facing wrapper: collects everything the core produced into one Ready batch.
import { EntryType, type Entry, type HardState, type Message, type ReadState, type Snapshot, type StateRole, type NodeId } from './types.js';
import { ProposalDroppedError, Raft, type RaftConfig } from './raft.js';

export interface Ready {
  /** Set when term, vote or commit changed: persist with `entries` in one synced write. */
  hardState: HardState | null;
  /** Entries to persist (may overwrite a persisted suffix from entries[0].index on). */
  entries: Entry[];
  /** A snapshot received from the leader: restore the state machine from it and reset the log. */
  snapshot: Snapshot | null;
  /** Committed entries to apply, in order (after persisting this Ready). */
  committedEntries: Entry[];
  /** To send after persisting this Ready. */
  messages: Message[];
  readStates: ReadState[];
}

export interface SoftState {
  lead: NodeId;
  role: StateRole;
}

export class RawNode {
  readonly raft: Raft;
  private prevHs: HardState;
  private maxApplyBytes: number;

  constructor(cfg: RaftConfig & { maxApplyBytes?: number }) {
    this.raft = new Raft(cfg);
    this.prevHs = this.hardState();
    this.maxApplyBytes = cfg.maxApplyBytes ?? 16 * 1024 * 1024;
  }

  tick(): void {
    this.raft.tick();
  }
  step(m: Message): void {
    this.raft.step(m);
  }
  propose(data: Buffer): { index: number; term: number } {
    return this.raft.propose(data, EntryType.Normal);
  }
  proposeConfChange(data: Buffer): { index: number; term: number } {
    return this.raft.propose(data, EntryType.ConfChange);
  }
  readIndex(context: Buffer): void {
    this.raft.readIndex(context);
  }
  transferLeader(target: NodeId): void {
    this.raft.transferLeader(target);
  }
  campaign(): void {
    this.raft.step({ type: 0, to: this.raft.id, from: this.raft.id, term: 0, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 });
  }

  hardState(): HardState {
    return { term: this.raft.term, vote: this.raft.vote, commit: this.raft.log.committed };
  }

  softState(): SoftState {
    return { lead: this.raft.lead, role: this.raft.role };
  }

  hasReady(): boolean {
    const r = this.raft;
    if (r.msgs.length > 0 || r.log.unstable.length > r.log.inProgress || r.readStates.length > 0) return true;
    if (r.log.pendingSnapshot) return true;
    const hs = this.hardState();
    if (hs.term !== this.prevHs.term || hs.vote !== this.prevHs.vote || hs.commit !== this.prevHs.commit) return true;
    return r.log.hasNextCommitted();
  }

  /**
   * Collects the batch and marks it handed out: entries are assumed persisted and committed
   * entries applied once the driver calls `advance` with this Ready.
   */
  ready(): Ready {
    const r = this.raft;
    r.flushBroadcast();
    const hs = this.hardState();
    const hsChanged = hs.term !== this.prevHs.term || hs.vote !== this.prevHs.vote || hs.commit !== this.prevHs.commit;
    const rd: Ready = {
      hardState: hsChanged ? hs : null,
      entries: r.log.unstableToPersist(),
      snapshot: r.log.pendingSnapshot,
      committedEntries: r.log.pendingSnapshot ? [] : r.log.nextCommitted(this.maxApplyBytes),
      messages: r.msgs,
      readStates: r.readStates,
    };
    r.log.acceptInProgress();
    r.msgs = [];
    r.readStates = [];
    if (hsChanged) this.prevHs = hs;
    if (rd.committedEntries.length > 0) r.log.appliedTo(rd.committedEntries[rd.committedEntries.length - 1]!.index);
    return rd;
  }

  /**
   * The driver persisted `rd` (storage now holds its entries/snapshot). Readies may be
   * collected before earlier ones are persisted, but must be advanced in the order collected.
   */
  advance(rd: Ready): void {
    if (rd.snapshot) this.raft.log.snapshotStable(rd.snapshot.meta.index);
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1]!;
      if (this.raft.log.stableTo(last.index, last.term)) this.raft.localStable(last.index);
    }
  }
}

export { ProposalDroppedError };
