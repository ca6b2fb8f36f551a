// The durable log as the core reads it. MemoryStorage mirrors what the runtime has persisted:
// the runtime appends to it only after the entries are synced, and compacts it after snapshots.
import { type ConfState, type Entry, type HardState, type SnapshotMeta, invariant } from './types.js';

export class CompactedError extends Error {
  override name = 'CompactedError';
}

export interface LogStorage {
  hardState(): HardState;
  snapshotMeta(): SnapshotMeta;
  firstIndex(): number;
  lastIndex(): number;
  /** Term of entry i; throws CompactedError below firstIndex-1. Returns 0 past the end. */
  term(i: number): number;
  /** Entries [lo, hi), stopping early once `maxBytes` is exceeded (at least one entry). */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
}

export function entrySize(e: Entry): number {
  return e.data.length + 24;
}

export class MemoryStorage implements LogStorage {
  /** ents[0] is a dummy entry at the snapshot index carrying the snapshot term. */
  private ents: Entry[];
  private hs: HardState = { term: 0, vote: '', commit: 0 };
  private snap: SnapshotMeta;

  constructor(conf: ConfState = { voters: [], learners: [] }) {
    this.snap = { index: 0, term: 0, conf };
    this.ents = [{ index: 0, term: 0, type: 0, data: Buffer.alloc(0) }];
  }

  hardState(): HardState {
    return this.hs;
  }
  setHardState(hs: HardState): void {
    this.hs = { ...hs };
  }
  snapshotMeta(): SnapshotMeta {
    return this.snap;
  }
  private offset(): number {
    return this.ents[0]!.index;
  }
  firstIndex(): number {
    return this.offset() + 1;
  }
  lastIndex(): number {
    return this.offset() + this.ents.length - 1;
  }
  term(i: number): number {
    const off = this.offset();
    if (i < off) throw new CompactedError(`entry ${i} compacted (first index ${off + 1})`);
    if (i - off >= this.ents.length) return 0;
    return this.ents[i - off]!.term;
  }
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const off = this.offset();
    if (lo <= off) throw new CompactedError(`entries from ${lo} compacted (first index ${off + 1})`);
    invariant(hi <= this.lastIndex() + 1, `entries ${lo}..${hi} beyond last ${this.lastIndex()}`);
    const out: Entry[] = [];
    let size = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.ents[i - off]!;
      size += entrySize(e);
      if (out.length > 0 && size > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  /** Appends persisted entries, truncating any conflicting suffix. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[entries.length - 1]!.index;
    if (last < first) return; // all already compacted
    let es = entries;
    if (first > es[0]!.index) es = es.slice(first - es[0]!.index);
    const off = es[0]!.index - this.offset();
    invariant(off <= this.ents.length, `append gap: ${es[0]!.index} after last ${this.lastIndex()}`);
    this.ents.length = off;
    for (const e of es) this.ents.push(e);
  }

  /** Drops entries up to and including `index`; the caller holds a snapshot covering them. */
  compact(index: number, conf: ConfState): void {
    const off = this.offset();
    if (index <= off) return;
    invariant(index <= this.lastIndex(), `compact ${index} beyond last ${this.lastIndex()}`);
    const term = this.ents[index - off]!.term;
    this.ents = [{ index, term, type: 0, data: Buffer.alloc(0) }, ...this.ents.slice(index - off + 1)];
    this.snap = { index, term, conf };
  }

  /** Replaces the whole log with a received snapshot. */
  applySnapshot(meta: SnapshotMeta): void {
    this.snap = meta;
    this.ents = [{ index: meta.index, term: meta.term, type: 0, data: Buffer.alloc(0) }];
  }
}
