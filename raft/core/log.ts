// The core's view of the log: persisted entries (storage) plus an unstable tail not yet synced.
import { CompactedError, type LogStorage, entrySize } from './storage.js';
import { type Entry, type Snapshot, invariant } from './types.js';

export class RaftLog {
  /** Entries not yet persisted, starting at `unstableOffset`. */
  unstable: Entry[] = [];
  unstableOffset: number;
  /**
   * How many entries at the front of `unstable` a Ready already handed out to be persisted
   * (their write is in flight): the next Ready carries only those after them, so the runtime
   * may collect it before the earlier write is done (etcd's asynchronous storage writes).
   */
  inProgress = 0;
  /** A received snapshot not yet persisted/applied by the runtime. */
  pendingSnapshot: Snapshot | null = null;
  committed: number;
  /** Highest index handed out for applying. */
  applied: number;

  constructor(
    readonly storage: LogStorage,
    applied: number,
  ) {
    this.unstableOffset = storage.lastIndex() + 1;
    this.committed = storage.hardState().commit;
    const first = storage.firstIndex() - 1;
    this.applied = Math.max(applied, first);
    if (this.committed < this.applied) this.committed = this.applied;
  }

  firstIndex(): number {
    if (this.pendingSnapshot) return this.pendingSnapshot.meta.index + 1;
    return this.storage.firstIndex();
  }

  lastIndex(): number {
    if (this.unstable.length > 0) return this.unstableOffset + this.unstable.length - 1;
    if (this.pendingSnapshot) return this.pendingSnapshot.meta.index;
    return this.storage.lastIndex();
  }

  /** Term of entry i, or 0 if unknown (past the end); throws CompactedError if compacted. */
  term(i: number): number {
    if (i > this.lastIndex()) return 0;
    if (this.pendingSnapshot && i === this.pendingSnapshot.meta.index) return this.pendingSnapshot.meta.term;
    if (i >= this.unstableOffset && this.unstable.length > 0) {
      const k = i - this.unstableOffset;
      return k < this.unstable.length ? this.unstable[k]!.term : 0;
    }
    if (this.pendingSnapshot && i < this.pendingSnapshot.meta.index) throw new CompactedError(`entry ${i} compacted`);
    if (i > this.storage.lastIndex()) return 0;
    return this.storage.term(i);
  }

  termOrZero(i: number): number {
    try {
      return this.term(i);
    } catch (e) {
      if (e instanceof CompactedError) return 0;
      throw e;
    }
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  matchTerm(i: number, t: number): boolean {
    try {
      return this.term(i) === t;
    } catch (e) {
      if (e instanceof CompactedError) return false;
      throw e;
    }
  }

  /** A candidate's log is at least as up to date as ours (Raft §5.4.1). */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /** Appends a leader's entries after (index, logTerm); returns the new last index, or -1 on mismatch. */
  maybeAppend(index: number, logTerm: number, committed: number, ents: Entry[]): number {
    if (!this.matchTerm(index, logTerm)) return -1;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      invariant(ci > this.committed, `entry ${ci} conflicts with committed ${this.committed}`);
      this.append(ents.slice(ci - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  /** First index whose term differs from ours (or that we lack); 0 if all match. */
  private findConflict(ents: Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /** Appends entries, truncating the unstable tail (or marking stored entries overwritten) as needed. */
  append(ents: Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index - 1;
    invariant(after >= this.committed, `append after ${after} below committed ${this.committed}`);
    const uLast = this.unstableOffset + this.unstable.length;
    if (after + 1 === uLast) {
      for (const e of ents) this.unstable.push(e);
    } else if (after + 1 <= this.unstableOffset) {
      // Replaces (part of) the persisted log: the runtime truncates storage when it persists these.
      this.unstableOffset = after + 1;
      this.unstable = ents.slice();
      this.inProgress = 0;
    } else {
      // Entries in flight past the cut are superseded: the next Ready writes their replacements.
      this.unstable = this.unstable.slice(0, after + 1 - this.unstableOffset);
      this.inProgress = Math.min(this.inProgress, this.unstable.length);
      for (const e of ents) this.unstable.push(e);
    }
    return this.lastIndex();
  }

  commitTo(c: number): void {
    if (c > this.committed) {
      invariant(c <= this.lastIndex(), `commit ${c} beyond last index ${this.lastIndex()}`);
      this.committed = c;
    }
  }

  /** Commits `index` only if it carries `term` (leaders commit only current-term entries by counting). */
  maybeCommit(index: number, term: number): boolean {
    if (index > this.committed && this.termOrZero(index) === term) {
      this.commitTo(index);
      return true;
    }
    return false;
  }

  /** Entries [lo, hi) from storage and the unstable tail. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo >= hi) return [];
    const first = this.firstIndex();
    if (lo < first) throw new CompactedError(`entries from ${lo} compacted (first ${first})`);
    invariant(hi <= this.lastIndex() + 1, `slice ${lo}..${hi} beyond last ${this.lastIndex()}`);
    let out: Entry[] = [];
    if (lo < this.unstableOffset) {
      out = this.storage.entries(lo, Math.min(hi, this.unstableOffset), maxBytes);
      if (out.length < Math.min(hi, this.unstableOffset) - lo) return out; // size limit hit
    }
    if (hi > this.unstableOffset) {
      let size = 0;
      for (const e of out) size += entrySize(e);
      for (let i = Math.max(lo, this.unstableOffset); i < hi; i++) {
        const e = this.unstable[i - this.unstableOffset]!;
        size += entrySize(e);
        if (out.length > 0 && size > maxBytes) break;
        out.push(e);
      }
    }
    return out;
  }

  /** Committed entries not yet handed out for applying. */
  nextCommitted(maxBytes: number): Entry[] {
    const lo = Math.max(this.applied + 1, this.firstIndex());
    if (this.committed < lo) return [];
    return this.slice(lo, this.committed + 1, maxBytes);
  }

  hasNextCommitted(): boolean {
    return this.committed > Math.max(this.applied, this.firstIndex() - 1);
  }

  appliedTo(i: number): void {
    invariant(i <= this.committed, `applied ${i} beyond committed ${this.committed}`);
    if (i > this.applied) this.applied = i;
  }

  /** Unstable entries not handed out in a Ready yet. */
  unstableToPersist(): Entry[] {
    return this.unstable.slice(this.inProgress);
  }

  /** A Ready handed out every unstable entry: their write is in flight. */
  acceptInProgress(): void {
    this.inProgress = this.unstable.length;
  }

  /** The last index of the log as persisted (entries in flight do not count). */
  stableLastIndex(): number {
    return this.unstableOffset - 1;
  }

  /**
   * Entries persisted by the runtime up to (index, term): drop them from the unstable tail.
   * Returns whether they were still ours (not overwritten meanwhile by a newer leader's).
   */
  stableTo(index: number, term: number): boolean {
    if (this.unstable.length === 0 || index < this.unstableOffset) return false;
    const k = index - this.unstableOffset;
    if (k >= this.unstable.length || this.unstable[k]!.term !== term) return false; // overwritten meanwhile
    this.unstable = this.unstable.slice(k + 1);
    this.unstableOffset = index + 1;
    this.inProgress = Math.max(0, this.inProgress - (k + 1));
    return true;
  }

  /** Accepts a leader's snapshot in place of the log. */
  restore(snap: Snapshot): void {
    this.pendingSnapshot = snap;
    this.committed = snap.meta.index;
    this.unstable = [];
    this.inProgress = 0;
    this.unstableOffset = snap.meta.index + 1;
  }

  /** The runtime has persisted and applied the pending snapshot. */
  snapshotStable(index: number): void {
    if (this.pendingSnapshot && this.pendingSnapshot.meta.index === index) {
      this.pendingSnapshot = null;
      if (this.applied < index) this.applied = index;
    }
  }
}
