// Compaction of fragmented chunks. Crash-safe: the new slice keeps the newest chunkId of the
// set (so later writes stay newer) with a compaction number above the newest one's, drawn at
// random (so its keys are new, also when another mount compacts the same chunk at once);
// its objects are written first, then the SliceStore swaps the slices atomically, then the
// old objects are deleted. A crash before the swap leaves only unreferenced objects (for
// fsck); a crash after it only leaks old objects.
import { randomInt } from 'node:crypto';
import PQueue from 'p-queue';
import type { Logger } from '../common/log.js';
import { StatusCode, TierfsError } from '../common/status.js';
import type { BlockReader } from './block-reader.js';
import { sliceBlockKey } from './keys.js';
import { newestFirst, objectPieces, resolveRange, shadowedSlices, sliceObjects } from './layout.js';
import type { ObjectStore } from './object-store.js';
import type { Slice, SliceStore } from './types.js';

export interface CompactorDeps {
  fsId: number;
  blockSize: number;
  chunkSize: number;
  store: ObjectStore;
  sliceStore: SliceStore;
  blocks: BlockReader;
  threshold: number;
  logger: Logger;
  /**
   * Resolves once every flush of the inode that already holds chunk ids has committed. Ids
   * reserved later are larger than any slice read afterwards, so the merged slice (which
   * keeps the newest id of its set) can never hide a slice that commits after the read.
   */
  settled(ino: number): Promise<void>;
  /** Called after a swap so cached slices of the inode are refetched. */
  onSwapped(ino: number): void;
}

export type CompactionResult = 'compacted' | 'skipped' | 'conflict';

/** Compaction numbers are drawn from [newest + 1, newest + COMPACTION_SPREAD] (proto: uint32). */
const COMPACTION_SPREAD = 1 << 16;

/** The object keys a slice of chunk `chunkIndex` reads (none for a zero slice; another inode's for a reference). */
export function sliceKeys(fsId: number, ino: number, chunkIndex: number, slice: Slice, blockSize: number, chunkSize: number): string[] {
  return sliceObjects(slice, blockSize).map((o) => sliceBlockKey(fsId, ino, chunkIndex, chunkSize / blockSize, slice, o.blockIndex));
}

/**
 * The object keys a per-inode deletion (trash, shadowed drop, compaction) may delete when
 * the slice goes: none for a reference (the objects are another slice's) nor for a shared
 * slice (other slices may read them; only fsck's GC, which sees every reference, reclaims
 * them). An O_APPEND run's slice reads its own objects through a reference (`refOwned`):
 * those it owns. Every deletion of slice objects goes through here.
 */
export function ownedKeys(fsId: number, ino: number, chunkIndex: number, slice: Slice, blockSize: number, chunkSize: number): string[] {
  if ((slice.ref && !slice.refOwned) || slice.shared) return [];
  return sliceKeys(fsId, ino, chunkIndex, slice, blockSize, chunkSize);
}

export class ChunkCompactor {
  private readonly queue = new PQueue({ concurrency: 1 });
  private readonly scheduled = new Set<string>();
  readonly counts = { compactions: 0, conflicts: 0, failures: 0, droppedSlices: 0 };

  constructor(private readonly deps: CompactorDeps) {}

  /**
   * Queues a clean-up of one chunk (deduplicated): shadowed slices dropped, then a compaction
   * if still fragmented. Failures are logged, never thrown.
   */
  schedule(ino: number, chunkIndex: number): void {
    const id = `${ino}:${chunkIndex}`;
    if (this.scheduled.has(id)) return;
    this.scheduled.add(id);
    void this.queue.add(async () => {
      this.scheduled.delete(id);
      try {
        await this.dropShadowed(ino, chunkIndex);
        if (this.deps.threshold > 0) await this.compact(ino, chunkIndex);
      } catch (err) {
        this.counts.failures++;
        this.deps.logger.warn({ ino, chunkIndex, err: err instanceof Error ? err.message : String(err) }, 'compaction failed; will retry on a later flush');
      }
    });
  }

  idle(): Promise<void> {
    return this.queue.onIdle();
  }

  clear(): void {
    this.queue.clear();
    this.scheduled.clear();
  }

  /**
   * Removes the chunk's shadowed slices (a file rewritten or truncated keeps its old slices
   * otherwise, and their objects, until a compaction) and deletes their objects; the swap is
   * the commit point, as in a compaction. Returns how many slices went.
   */
  async dropShadowed(ino: number, chunkIndex: number): Promise<number> {
    const { sliceStore } = this.deps;
    const dead = shadowedSlices((await sliceStore.getSlices(ino)).get(chunkIndex) ?? []);
    if (dead.length === 0) return 0;
    try {
      await sliceStore.replaceSlices(ino, chunkIndex, dead, []);
    } catch (err) {
      if (!(err instanceof TierfsError && err.code === StatusCode.TX_CONFLICT)) throw err;
      this.counts.conflicts++; // a concurrent compaction took them: the next flush looks again
      return 0;
    }
    this.counts.droppedSlices += dead.length;
    this.deps.onSwapped(ino);
    await this.deleteObjects(ino, chunkIndex, dead);
    return dead.length;
  }

  private async deleteObjects(ino: number, chunkIndex: number, slices: Slice[]): Promise<void> {
    const { fsId, blockSize, chunkSize, store } = this.deps;
    const keys = slices.flatMap((s) => ownedKeys(fsId, ino, chunkIndex, s, blockSize, chunkSize));
    for (const key of keys) {
      await this.deps.blocks.remove(key);
    }
    await store.deleteMany(keys);
  }

  /** Compacts the chunk when it holds more slices than the threshold (force: any count >= 2). */
  async compact(ino: number, chunkIndex: number, force = false): Promise<CompactionResult> {
    const { fsId, blockSize, chunkSize, store, sliceStore } = this.deps;
    await this.deps.settled(ino);
    const set = (await sliceStore.getSlices(ino)).get(chunkIndex) ?? [];
    if (set.length < 2 || (!force && set.length <= this.deps.threshold)) return 'skipped';
    const newest = newestFirst(set);
    const top = newest[0]!;
    const lo = Math.min(...set.map((s) => s.offset));
    const hi = Math.max(...set.map((s) => s.offset + s.len));
    const segments = resolveRange(lo, hi, newest.map((s) => ({ start: s.offset, end: s.offset + s.len, source: s })));
    // Data runs plus the zero gaps between them stay under the threshold (2 * runs + 1 slices);
    // with automatic compaction off (threshold 0) nothing can loop, so every run is kept.
    const t = this.deps.threshold;
    // Two mounts may compact the chunk at once from different sets with the same newest
    // slice (another mount's older-id append joined one of them): their objects must not
    // share keys, or the loser's puts overwrite what the winner's slices read. A compaction
    // number drawn above the newest one keeps keys apart and the merged slices newest.
    const compaction = top.compaction + 1 + randomInt(COMPACTION_SPREAD);
    const merged = mergedSlices(segments, lo, hi, top, blockSize, t > 0 ? Math.max(1, Math.floor((t - 1) / 2)) : Infinity, compaction);
    const newKeys = merged.flatMap((m) => sliceKeys(fsId, ino, chunkIndex, m, blockSize, chunkSize));
    if (merged.some((m) => !m.zero)) {
      const data = Buffer.alloc(hi - lo);
      await Promise.all(
        segments.map(async (seg) => {
          if (seg.source === null || seg.source.zero) return;
          const slice = seg.source;
          for (const p of objectPieces(slice, seg.start, seg.end, blockSize)) {
            const obj = await this.deps.blocks.get(sliceBlockKey(fsId, ino, chunkIndex, chunkSize / blockSize, slice, p.blockIndex), p.objectSize);
            obj.copy(data, p.chunkPos - lo, p.from, p.from + p.len);
          }
        }),
      );
      const puts = merged.flatMap((m) => sliceObjects(m, blockSize).map((o) => ({ key: sliceBlockKey(fsId, ino, chunkIndex, chunkSize / blockSize, m, o.blockIndex), o })));
      await Promise.all(puts.map(({ key, o }) => store.put(key, data.subarray(o.chunkStart - lo, o.chunkStart - lo + o.size))));
    }
    try {
      await sliceStore.replaceSlices(ino, chunkIndex, set, merged);
    } catch (err) {
      if (!(err instanceof TierfsError && err.code === StatusCode.TX_CONFLICT)) throw err;
      this.counts.conflicts++;
      // Someone else changed the chunk. Our objects are garbage unless an identical
      // compaction (same keys) won the race and now references them.
      const now = (await sliceStore.getSlices(ino)).get(chunkIndex) ?? [];
      const referenced = now.some((s) => !s.ref && s.chunkId === top.chunkId && s.compaction === compaction);
      if (!referenced && newKeys.length > 0) await store.deleteMany(newKeys);
      return 'conflict';
    }
    this.counts.compactions++;
    this.deps.onSwapped(ino);
    await this.deleteObjects(ino, chunkIndex, set);
    return 'compacted';
  }
}

/**
 * What a compaction writes for a chunk's resolved segments over [lo, hi): one data slice per
 * run of data, and zero slices over the gaps, all with the newest chunkId of the set (so
 * later writes stay newer) and compaction + 1 (so its keys are new). The whole of [lo, hi)
 * stays covered at that id, as by the single merged slice this replaces, so a slice older
 * than the set's newest that commits after the swap stays masked just as before; but punched
 * holes and truncated tails are not written back as zeros (st_blocks, SEEK_HOLE). Runs that
 * meet in a block become one slice holding the zeros between them (slices sharing an id and
 * a block would share an object key). More runs than maxSlices become one, from the first
 * data byte to the last, so a compacted chunk stays under the compaction threshold.
 */
export function mergedSlices(
  segments: Array<{ start: number; end: number; source: Slice | null }>, lo: number, hi: number, top: Slice, blockSize: number, maxSlices: number,
  compaction = top.compaction + 1,
): Slice[] {
  let runs: Array<[number, number]> = [];
  for (const seg of segments) {
    if (seg.source === null || seg.source.zero) continue;
    const last = runs[runs.length - 1];
    if (last && (last[1] >= seg.start || Math.floor((last[1] - 1) / blockSize) >= Math.floor(seg.start / blockSize))) last[1] = seg.end;
    else runs.push([seg.start, seg.end]);
  }
  if (runs.length > maxSlices) runs = [[runs[0]![0], runs[runs.length - 1]![1]]];
  const out: Slice[] = [];
  const id = { chunkId: top.chunkId, compaction };
  let pos = lo;
  for (const [s, e] of runs) {
    if (s > pos) out.push({ ...id, offset: pos, len: s - pos, size: 0, zero: true });
    out.push({ ...id, offset: s, len: e - s, size: e - s, zero: false });
    pos = e;
  }
  if (hi > pos) out.push({ ...id, offset: pos, len: hi - pos, size: 0, zero: true });
  return out;
}
