// Per-inode state of the adaptor: buffered chunks, flushes in flight, cached slices.
import type { DirtyChunk, PendingEntry } from './write-buffer.js';
import type { ChunkSlices, Slice } from './types.js';

export class InodeState {
  readonly dirty = new Map<number, DirtyChunk>();
  /** Flushes and truncates in the order they were issued; released in prefix order. */
  readonly pending: PendingEntry[] = [];
  slices: ChunkSlices | null = null;
  /** Bumped by every commit or invalidation, so a slice fetch that raced one is retried. */
  slicesGen = 0;
  loading: Promise<ChunkSlices> | null = null;
  readonly inFlight = new Set<Promise<void>>();
  readonly uploads = new Set<Promise<void>>();
  /** The first failure of a background flush, reported by the next flush/fsync. */
  error: Error | null = null;
  lastReadEnd = 0;
  readaheadUntil = 0;
  /** Readahead window of the sequential stream (bytes): grows while the stream continues, 0 after a jump. */
  readaheadWindow = 0;
  /** Reads served so far (the first read of a small file prefetches all of it). */
  reads = 0;
  lastUsed = Date.now();

  constructor(readonly ino: number) {}

  get idle(): boolean {
    return this.dirty.size === 0 && this.pending.length === 0 && this.inFlight.size === 0 && this.uploads.size === 0;
  }

  addCommitted(added: Map<number, Slice[]>): void {
    this.slicesGen++;
    if (!this.slices) return;
    for (const [idx, list] of added) {
      const cur = this.slices.get(idx);
      if (cur) cur.push(...list);
      else this.slices.set(idx, [...list]);
    }
  }

  invalidate(): void {
    this.slices = null;
    this.slicesGen++;
  }
}

export function cloneSlices(s: ChunkSlices): ChunkSlices {
  return new Map([...s].map(([idx, list]) => [idx, list.map((x) => ({ ...x }))]));
}

/** The adaptor's per-inode states, shared by the write path, the read path and the facade. */
export class InodeTable {
  private readonly map = new Map<number, InodeState>();

  /** The inode's state, created on first use; marks it used now. */
  get(ino: number): InodeState {
    let st = this.map.get(ino);
    if (!st) {
      st = new InodeState(ino);
      this.map.set(ino, st);
    }
    st.lastUsed = Date.now();
    return st;
  }

  /** The state if there is one (not created, not touched). */
  peek(ino: number): InodeState | undefined {
    return this.map.get(ino);
  }

  delete(ino: number): void {
    this.map.delete(ino);
  }

  get size(): number {
    return this.map.size;
  }

  keys(): IterableIterator<number> {
    return this.map.keys();
  }

  values(): IterableIterator<InodeState> {
    return this.map.values();
  }

  entries(): IterableIterator<[number, InodeState]> {
    return this.map.entries();
  }
}
