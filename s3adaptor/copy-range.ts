// copy_file_range by reference: the plan. The destination gets slices that read the source's
// existing objects (Slice.ref), so no byte moves and S3 sees no request. Any offsets work:
// a reference names the owning slice's extent (which fixes its objects' boundaries) and the
// position of its first byte in the owner's chunk, so a piece of a slice can be referenced
// from any destination offset, block-aligned or not, in any chunk; a piece that would cross
// a destination chunk boundary becomes two slices. The only bytes ever read are the source's
// holes, which need none: they become zero slices masking older destination data.
import { newestFirst, resolveRange } from './layout.js';
import type { ChunkSlices, Slice, SliceRef } from './types.js';

export interface CopyPlan {
  /** Destination chunk index -> slices to append (their chunkId is filled in at commit). */
  added: Map<number, Slice[]>;
  /**
   * Source chunk index -> the source's own slices the references read that are not marked
   * shared yet: they must be marked (a swap that fails if they changed) before the
   * references commit, so that no per-inode deletion path deletes their objects.
   */
  toShare: Map<number, Slice[]>;
  /** Bytes the destination now references (for counters and tests). */
  referencedBytes: number;
}

export interface CopyRequest {
  srcIno: number;
  srcOffset: number;
  dstOffset: number;
  /** Already clamped to the source's size. */
  length: number;
  chunkSize: number;
  /** The source's committed slices, fresh from the SliceStore (exact records: they are matched when shared). */
  src: ChunkSlices;
  /** The destination's committed slices: a source hole needs a zero slice only over destination data. */
  dst: ChunkSlices;
}

/** A reference to [pos, pos + len) of `owner` (a chunk offset range of the source chunk). */
function refTo(srcIno: number, srcIdx: number, owner: Slice, pos: number): SliceRef {
  if (owner.ref) return { ...owner.ref, pos: owner.ref.pos + (pos - owner.offset) }; // one level: point at the original
  return { ino: srcIno, chunkIndex: srcIdx, chunkId: owner.chunkId, compaction: owner.compaction, offset: owner.offset, len: owner.len, pos };
}

export function planCopy(req: CopyRequest): CopyPlan {
  const cs = req.chunkSize;
  const plan: CopyPlan = { added: new Map(), toShare: new Map(), referencedBytes: 0 };
  const shareSets = new Map<number, Set<Slice>>();
  const srcEnd = req.srcOffset + req.length;
  const push = (idx: number, s: Slice) => {
    const list = plan.added.get(idx);
    if (list) list.push(s);
    else plan.added.set(idx, [s]);
  };
  const dstHasData = (idx: number, s: number, e: number) =>
    (req.dst.get(idx) ?? []).some((x) => !x.zero && x.offset < e && x.offset + x.len > s);
  for (let srcIdx = Math.floor(req.srcOffset / cs); srcIdx * cs < srcEnd; srcIdx++) {
    const base = srcIdx * cs;
    const cStart = Math.max(req.srcOffset, base) - base;
    const cEnd = Math.min(srcEnd, base + cs) - base;
    const layers = newestFirst(req.src.get(srcIdx) ?? []).map((s) => ({ start: s.offset, end: s.offset + s.len, source: s }));
    for (const seg of resolveRange(cStart, cEnd, layers)) {
      // Cut the segment where the destination crosses a chunk boundary.
      for (let at = seg.start; at < seg.end; ) {
        const dstPos = base + at - req.srcOffset + req.dstOffset;
        const dIdx = Math.floor(dstPos / cs);
        const dOff = dstPos - dIdx * cs;
        const n = Math.min(seg.end - at, cs - dOff);
        const owner = seg.source;
        if (owner === null || owner.zero) {
          if (dstHasData(dIdx, dOff, dOff + n)) push(dIdx, { chunkId: 0, compaction: 0, offset: dOff, len: n, size: 0, zero: true });
        } else {
          push(dIdx, { chunkId: 0, compaction: 0, offset: dOff, len: n, size: n, zero: false, ref: refTo(req.srcIno, srcIdx, owner, at) });
          plan.referencedBytes += n;
          // A reference owns no objects to mark, unless it is an O_APPEND run's (refOwned).
          if ((!owner.ref || owner.refOwned) && !owner.shared) {
            let set = shareSets.get(srcIdx);
            if (!set) shareSets.set(srcIdx, (set = new Set()));
            set.add(owner);
          }
        }
        at += n;
      }
    }
  }
  for (const [idx, set] of shareSets) plan.toShare.set(idx, [...set]);
  return plan;
}
