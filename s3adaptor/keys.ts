// Object keys of file blocks: a short hash prefix (spreads keys over S3 partitions),
// then `{fsId}_{ino}_{chunkId}_{blockIndex}_{compaction}`. Pure, so the MDS can parse
// the keys of a filesystem it deletes, and a cache directory is self-describing.

export interface BlockKeyParts {
  fsId: number;
  ino: number;
  chunkId: number;
  blockIndex: number;
  compaction: number;
}

/** FNV-1a over the identifying numbers, folded to two hex digits. */
function hashPrefix(ino: number, chunkId: number, blockIndex: number): string {
  let h = 0x811c9dc5;
  const text = `${ino}_${chunkId}_${blockIndex}`;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return ((h ^ (h >>> 8) ^ (h >>> 16) ^ (h >>> 24)) & 0xff).toString(16).padStart(2, '0');
}

export function blockKey(fsId: number, ino: number, chunkId: number, blockIndex: number, compaction: number): string {
  return `${hashPrefix(ino, chunkId, blockIndex)}_${fsId}_${ino}_${chunkId}_${blockIndex}_${compaction}`;
}

/** Parses a key made by blockKey; null for anything else (foreign objects in the bucket). */
export function parseBlockKey(key: string): BlockKeyParts | null {
  const m = /^([0-9a-f]{2})_(\d+)_(\d+)_(\d+)_(\d+)_(\d+)$/.exec(key);
  if (!m) return null;
  const [fsId, ino, chunkId, blockIndex, compaction] = m.slice(2).map(Number) as [number, number, number, number, number];
  if (hashPrefix(ino, chunkId, blockIndex) !== m[1]) return null;
  return { fsId, ino, chunkId, blockIndex, compaction };
}

/**
 * The key of a slice's object in block `blockInChunk` of chunk `chunkIndex`. The key's
 * blockIndex counts blocks from the start of the file, so keys stay unique even where
 * slices of different chunks share a chunkId (the zero slices of one truncate, and what
 * compaction makes of them). A slice copied by reference reads the objects of the slice it
 * names: its inode, chunk index, chunkId and compaction make the key (blockInChunk is then a
 * block of that slice's chunk, as objectPieces gives it).
 */
export function sliceBlockKey(
  fsId: number,
  ino: number,
  chunkIndex: number,
  blocksPerChunk: number,
  slice: { chunkId: number; compaction: number; ref?: { ino: number; chunkIndex: number; chunkId: number; compaction: number; fsId?: number } },
  blockInChunk: number,
): string {
  const r = slice.ref;
  if (r) return blockKey(r.fsId || fsId, r.ino, r.chunkId, r.chunkIndex * blocksPerChunk + blockInChunk, r.compaction);
  return blockKey(fsId, ino, slice.chunkId, chunkIndex * blocksPerChunk + blockInChunk, slice.compaction);
}
