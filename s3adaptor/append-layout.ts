// Where an O_APPEND run lands, as slices: pure, shared by the metaserver (which places the run
// inside its Raft entry, once the end of the file is known) and the data path (which adds the
// same slices to its cache). The run's bytes are already in objects: one slice extent
// [ownerOffset, ownerOffset + len) of chunk 0 under ownerChunkId. Placed at `base`, the run
// becomes one slice per chunk it crosses, each a reference to its part of those objects
// (`ref`) that owns them (`refOwned`: deleted with the slice, unlike a copy's reference).
// Two pieces cut where the objects' block grid is not cut would read one object both: then
// neither owns it alone, and both are marked `shared` (left to fsck's GC, as a copy's are).
// The data path picks ownerOffset = its guess of base modulo the block size, so the cut falls
// on the grid whenever the guess was right.
import type { AppendRunRequest, Slice } from './types.js';

export type AppendRunLayout = Omit<AppendRunRequest, 'mtimeMs' | 'ctimeMs'>;

/** chunk index -> the slice placed there (one per chunk the run crosses). */
export function appendPieces(ino: number, base: number, run: AppendRunLayout): Map<number, Slice[]> {
  const cs = run.chunkSize;
  const out = new Map<number, Slice[]>();
  let cutOffGrid = false;
  for (let at = 0; at < run.len; ) {
    const pos = base + at;
    const idx = Math.floor(pos / cs);
    const off = pos - idx * cs;
    const n = Math.min(run.len - at, cs - off);
    if (at > 0 && (run.ownerOffset + at) % run.blockSize !== 0) cutOffGrid = true;
    out.set(idx, [{
      chunkId: run.chunkId, compaction: 0, offset: off, len: n, size: n, zero: false,
      ref: { ino, chunkIndex: 0, chunkId: run.ownerChunkId, compaction: 0, offset: run.ownerOffset, len: run.len, pos: run.ownerOffset + at },
      refOwned: true,
    }]);
    at += n;
  }
  if (cutOffGrid) for (const list of out.values()) for (const s of list) s.shared = true;
  return out;
}
