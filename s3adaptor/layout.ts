// Pure layout math: which layer (buffered data, pending flush, slice) serves each byte of a
// chunk range, and which block objects hold a slice's bytes. Objects are aligned to the
// chunk's block grid: block i of a slice holds its bytes within [i*blockSize, (i+1)*blockSize).
import type { Slice } from './types.js';

export interface Layer<T> {
  start: number;
  end: number;
  source: T;
}

export interface Segment<T> {
  start: number;
  end: number;
  /** null: no layer covers it (a hole, reads as zeros). */
  source: T | null;
}

/** Splits [start, end) among layers given newest first; each byte goes to the newest layer covering it. */
export function resolveRange<T>(start: number, end: number, layersNewestFirst: Iterable<Layer<T>>): Segment<T>[] {
  let uncovered: Array<[number, number]> = start < end ? [[start, end]] : [];
  const out: Segment<T>[] = [];
  for (const layer of layersNewestFirst) {
    if (uncovered.length === 0) break;
    if (layer.end <= layer.start) continue;
    const rest: Array<[number, number]> = [];
    for (const [a, b] of uncovered) {
      const s = Math.max(a, layer.start);
      const e = Math.min(b, layer.end);
      if (s >= e) {
        rest.push([a, b]);
        continue;
      }
      out.push({ start: s, end: e, source: layer.source });
      if (a < s) rest.push([a, s]);
      if (e < b) rest.push([e, b]);
    }
    uncovered = rest;
  }
  for (const [a, b] of uncovered) out.push({ start: a, end: b, source: null });
  return out.sort((x, y) => x.start - y.start);
}

/** Newest first: a higher chunkId is a later write; compaction keeps the chunkId it replaced. */
export function newestFirst(slices: readonly Slice[]): Slice[] {
  return [...slices].sort((a, b) => b.chunkId - a.chunkId || b.compaction - a.compaction);
}

/**
 * Slices no byte reads from: every byte they cover is covered by a newer slice. Dropping them
 * changes no read, now or after any later commit (a later slice meets the same newer ones),
 * so they can go without rewriting anything; their objects are garbage.
 */
export function shadowedSlices(slices: readonly Slice[]): Slice[] {
  if (slices.length < 2) return [];
  const newest = newestFirst(slices);
  const lo = Math.min(...slices.map((s) => s.offset));
  const hi = Math.max(...slices.map((s) => s.offset + s.len));
  const visible = new Set<Slice>();
  for (const seg of resolveRange(lo, hi, newest.map((s) => ({ start: s.offset, end: s.offset + s.len, source: s })))) {
    if (seg.source) visible.add(seg.source);
  }
  return slices.filter((s) => !visible.has(s));
}

export interface BlockObject {
  blockIndex: number;
  /** Chunk offset of the object's first byte. */
  chunkStart: number;
  size: number;
}

/**
 * The block objects a data slice reads (none for a zero slice): its own, or for a slice
 * copied by reference the owner's objects that hold its bytes (chunkStart is then an offset
 * in the owner's chunk, and blockIndex a block of that chunk).
 */
export function sliceObjects(slice: Slice, blockSize: number): BlockObject[] {
  if (slice.zero || slice.len === 0) return [];
  const g = extent(slice);
  const from = slice.ref ? slice.ref.pos : slice.offset;
  const out: BlockObject[] = [];
  for (let i = Math.floor(from / blockSize); i * blockSize < from + slice.len; i++) {
    const s = Math.max(g.offset, i * blockSize);
    const e = Math.min(g.offset + g.len, (i + 1) * blockSize);
    out.push({ blockIndex: i, chunkStart: s, size: e - s });
  }
  return out;
}

/** The extent of the slice that wrote the objects (which fixes their boundaries). */
function extent(slice: Slice): { offset: number; len: number } {
  return slice.ref ? { offset: slice.ref.offset, len: slice.ref.len } : slice;
}

export interface ObjectPiece {
  blockIndex: number;
  objectSize: number;
  /** Offset inside the object. */
  from: number;
  /** Chunk offset the piece starts at. */
  chunkPos: number;
  len: number;
}

/**
 * The object pieces that hold [start, end) of a data slice (the range lies inside the slice).
 * A slice copied by reference reads its owner's objects, shifted to where its bytes are in
 * the owner's chunk; `chunkPos` stays a position in this slice's chunk.
 */
export function objectPieces(slice: Slice, start: number, end: number, blockSize: number): ObjectPiece[] {
  const out: ObjectPiece[] = [];
  const g = extent(slice);
  const shift = slice.ref ? slice.ref.pos - slice.offset : 0;
  const gEnd = g.offset + g.len;
  for (let pos = start + shift; pos < end + shift; ) {
    const i = Math.floor(pos / blockSize);
    const objStart = Math.max(g.offset, i * blockSize);
    const objEnd = Math.min(gEnd, (i + 1) * blockSize);
    const e = Math.min(end + shift, objEnd);
    out.push({ blockIndex: i, objectSize: objEnd - objStart, from: pos - objStart, chunkPos: pos - shift, len: e - pos });
    pos = e;
  }
  return out;
}
