// Where a file's data is: SEEK_DATA / SEEK_HOLE and the bytes actually held (st_blocks).
// Answered from what a read would see now (buffered data, flushes and masks in flight,
// committed slices): zero slices and ranges no slice covers are holes, everything else is
// data. Byte-exact, where a block filesystem rounds to its blocks (POSIX allows either).
import { StatusCode, TierfsError } from '../common/status.js';
import type { InodeState } from './inode-state.js';
import type { ReadPath, Source } from './read-path.js';
import type { Segment } from './layout.js';
import type { ChunkSlices } from './types.js';

const isData = (seg: Segment<Source>): boolean => seg.source !== null && seg.source.kind !== 'zero';

export class FileExtents {
  constructor(
    private readonly chunkSize: number,
    private readonly reads: ReadPath,
  ) {}

  /** Chunks holding anything but holes: committed slices, buffered or flushing data (ascending). */
  private async chunksWithData(st: InodeState): Promise<{ slices: ChunkSlices; idxs: number[] }> {
    const slices = await this.reads.loadSlices(st);
    const idxs = new Set<number>();
    for (const [idx, list] of slices) if (list.some((s) => !s.zero)) idxs.add(idx);
    for (const idx of st.dirty.keys()) idxs.add(idx);
    for (const p of st.pending) if (p.kind === 'data') for (const idx of p.chunks.keys()) idxs.add(idx);
    return { slices, idxs: [...idxs].sort((a, b) => a - b) };
  }

  /** The first data offset at or after `offset`; BEYOND_EOF (ENXIO) when there is none before size. */
  async seekData(st: InodeState, offset: number, size: number): Promise<number> {
    if (offset >= size) throw new TierfsError(StatusCode.BEYOND_EOF, `SEEK_DATA at ${offset}: file size is ${size}`);
    const { slices, idxs } = await this.chunksWithData(st);
    const cs = this.chunkSize;
    for (const idx of idxs) {
      const base = idx * cs;
      if (base + cs <= offset) continue;
      if (base >= size) break;
      const cStart = Math.max(offset, base) - base;
      const cEnd = Math.min(size, base + cs) - base;
      const seg = this.reads.chunkSegments(st, idx, cStart, cEnd, slices.get(idx) ?? []).find(isData);
      if (seg) return base + seg.start;
    }
    throw new TierfsError(StatusCode.BEYOND_EOF, `SEEK_DATA at ${offset}: no data up to the end (${size})`);
  }

  /** The first hole offset at or after `offset`; size when data runs to the end; BEYOND_EOF past it. */
  async seekHole(st: InodeState, offset: number, size: number): Promise<number> {
    if (offset >= size) throw new TierfsError(StatusCode.BEYOND_EOF, `SEEK_HOLE at ${offset}: file size is ${size}`);
    const { slices, idxs } = await this.chunksWithData(st);
    const withData = new Set(idxs);
    const cs = this.chunkSize;
    for (let idx = Math.floor(offset / cs); idx * cs < size; idx++) {
      const base = idx * cs;
      if (!withData.has(idx)) return Math.max(offset, base); // a whole chunk of hole
      const cStart = Math.max(offset, base) - base;
      const cEnd = Math.min(size, base + cs) - base;
      const seg = this.reads.chunkSegments(st, idx, cStart, cEnd, slices.get(idx) ?? []).find((s) => !isData(s));
      if (seg) return base + seg.start;
    }
    return size; // the virtual hole at the end of the file
  }

  /** Bytes of data a read would find (references count: both sides of a copy hold the bytes, as reflinks do). */
  async allocatedBytes(st: InodeState): Promise<number> {
    for (;;) {
      await this.reads.loadSlices(st);
      const bytes = this.cachedAllocatedBytes(st);
      if (bytes !== null) return bytes; // else invalidated meanwhile: load again
    }
  }

  /** allocatedBytes from the cached slices only; null when they are not cached (no metaserver read). */
  cachedAllocatedBytes(st: InodeState): number | null {
    const slices = st.slices;
    if (!slices) return null;
    const idxs = new Set<number>();
    for (const [idx, list] of slices) if (list.some((s) => !s.zero)) idxs.add(idx);
    for (const idx of st.dirty.keys()) idxs.add(idx);
    for (const p of st.pending) if (p.kind === 'data') for (const idx of p.chunks.keys()) idxs.add(idx);
    let bytes = 0;
    for (const idx of idxs) {
      for (const seg of this.reads.chunkSegments(st, idx, 0, this.chunkSize, slices.get(idx) ?? [])) {
        if (isData(seg)) bytes += seg.end - seg.start;
      }
    }
    return bytes;
  }
}
