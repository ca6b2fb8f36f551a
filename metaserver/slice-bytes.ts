// The bytes of data a chunk's slices hold as a read sees them (st_blocks): newer slices cover
// older ones, zero slices (truncates, punched holes) are holes, references count as data (both
// sides of a copy hold the bytes, as reflinks do). The same overlay as s3adaptor's read path,
// restated here because the metaserver keeps the count in the inode when it applies slices.
import type { SliceRecord } from './meta-client.js';

/** Newest first: a higher chunkId is a later write; compaction keeps the chunkId it replaced. */
const newerFirst = (a: SliceRecord, b: SliceRecord): number => b.chunkId - a.chunkId || b.compaction - a.compaction;

export function chunkDataBytes(slices: readonly SliceRecord[]): number {
  // Covered intervals, disjoint; a chunk holds tens of slices at most (compaction), so lists suffice.
  let covered: Array<[number, number]> = [];
  let bytes = 0;
  for (const s of [...slices].sort(newerFirst)) {
    let [start, end] = [s.offset, s.offset + s.len];
    if (end <= start) continue;
    let visible = end - start;
    const next: Array<[number, number]> = [];
    for (const [a, b] of covered) {
      if (b < start || a > end) {
        next.push([a, b]);
        continue;
      }
      // Overlapping or touching: what is already covered is not visible from this slice; merge.
      visible -= Math.max(0, Math.min(b, end) - Math.max(a, start));
      start = Math.min(a, start);
      end = Math.max(b, end);
    }
    next.push([start, end]);
    covered = next;
    if (!s.zero) bytes += visible;
  }
  return bytes;
}
