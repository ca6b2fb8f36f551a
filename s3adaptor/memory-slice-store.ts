// In-memory SliceStore and ChunkIdAllocator, for tests, benchmarks and single-process tools.
// They keep the same contract as the metaserver-backed ones: atomic appends, and a
// compaction swap that fails with TX_CONFLICT when the removed slices no longer match.
import { StatusCode, TierfsError } from '../common/status.js';
import type { ChunkIdAllocator, ChunkSlices, Slice, SliceStore } from './types.js';

const copySlice = (x: Slice): Slice => (x.ref ? { ...x, ref: { ...x.ref } } : { ...x });

// `shared` takes part: a compaction or drop planned before the slice was shared must fail
// rather than delete objects another inode now reads.
const sameSlice = (a: Slice, b: Slice) =>
  a.chunkId === b.chunkId && a.compaction === b.compaction && a.offset === b.offset && a.len === b.len && a.zero === b.zero &&
  !!a.shared === !!b.shared && !!a.ref === !!b.ref;

export class MemorySliceStore implements SliceStore {
  private readonly inodes = new Map<number, ChunkSlices>();
  calls = { get: 0, append: 0, replace: 0 };

  async getSlices(ino: number): Promise<ChunkSlices> {
    this.calls.get++;
    const s: ChunkSlices = this.inodes.get(ino) ?? new Map();
    return new Map([...s].map(([idx, list]) => [idx, list.map(copySlice)]));
  }

  async appendSlices(ino: number, added: Map<number, Slice[]>): Promise<void> {
    this.calls.append++;
    let s = this.inodes.get(ino);
    if (!s) this.inodes.set(ino, (s = new Map()));
    for (const [idx, list] of added) s.set(idx, [...(s.get(idx) ?? []), ...list.map(copySlice)]);
  }

  async replaceSlices(ino: number, chunkIndex: number, removed: Slice[], added: Slice[]): Promise<void> {
    this.calls.replace++;
    const cur = this.inodes.get(ino)?.get(chunkIndex) ?? [];
    const positions = removed.map((r) => cur.findIndex((c) => sameSlice(c, r)));
    if (positions.some((p) => p < 0)) throw new TierfsError(StatusCode.TX_CONFLICT, `ino ${ino} chunk ${chunkIndex}: slices changed since read`);
    const gone = new Set(positions);
    const kept = cur.filter((_, i) => !gone.has(i));
    // The merged slice replaces the old ones at the front: write order stays oldest first.
    this.inodes.get(ino)!.set(chunkIndex, [...added.map(copySlice), ...kept]);
  }

  /** Removes an inode's slices (after its objects were deleted). */
  drop(ino: number): void {
    this.inodes.delete(ino);
  }
}

export class MemoryChunkIdAllocator implements ChunkIdAllocator {
  private next: number;
  calls = 0;

  constructor(first = 1) {
    this.next = first;
  }

  async allocate(count: number): Promise<{ start: number; count: number }> {
    this.calls++;
    const start = this.next;
    this.next += count;
    return { start, count };
  }
}
