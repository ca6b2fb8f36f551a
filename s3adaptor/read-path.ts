// The read side of the adaptor: for each chunk, buffered data, flushes and truncates in
// flight, then committed slices, newest first; block objects come whole through the
// BlockReader (memory LRU -> disk cache -> S3), copied straight into the caller's buffer
// (the FUSE reply buffer). Sequential reads prefetch the following blocks.
import { StatusCode, TierfsError } from '../common/status.js';
import type { BlockReader } from './block-reader.js';
import type { InodeState } from './inode-state.js';
import { sliceBlockKey } from './keys.js';
import { newestFirst, objectPieces, resolveRange, type Layer, type Segment } from './layout.js';
import type { ChunkSlices, Slice, SliceStore } from './types.js';
import type { DirtyChunk } from './write-buffer.js';
import { cloneSlices } from './inode-state.js';

/** What serves a byte: buffered data, a masked range (truncate, hole punch), or a committed slice. */
export type Source = { kind: 'mem'; chunk: DirtyChunk } | { kind: 'zero' } | { kind: 'slice'; slice: Slice };

export interface ReadPathDeps {
  fsId: number;
  chunkSize: number;
  blockSize: number;
  /** The largest readahead window, in blocks (0: no readahead). */
  readaheadBlocks: number;
  /** The largest readahead window in bytes (memory bound: what the memory tier can hold for readers). */
  readaheadMaxBytes: number;
  /** A file up to this size is prefetched whole at its first read. */
  smallFileBytes: number;
  sliceStore: SliceStore;
  blocks: BlockReader;
  /**
   * How long a read waits for a block object that is missing (another mount's `--writeback`
   * upload not done yet) before answering EIO; --s3-timeout, default 30 s.
   */
  missingWaitMs?: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class ReadPath {
  private readonly cs: number;
  private readonly bs: number;
  private readonly bpc: number;

  constructor(private readonly deps: ReadPathDeps) {
    this.cs = deps.chunkSize;
    this.bs = deps.blockSize;
    this.bpc = deps.chunkSize / deps.blockSize;
  }

  /** The inode's committed slices, cached; a fetch that raced a commit or invalidation is redone. */
  async loadSlices(st: InodeState): Promise<ChunkSlices> {
    for (;;) {
      if (st.slices) return st.slices;
      const gen = st.slicesGen;
      let p = st.loading;
      if (!p) {
        const fresh: Promise<ChunkSlices> = this.deps.sliceStore.getSlices(st.ino).finally(() => {
          if (st.loading === fresh) st.loading = null;
        });
        st.loading = p = fresh;
      }
      const fetched = await p;
      if (st.slices) return st.slices;
      if (st.slicesGen === gen) {
        st.slices = cloneSlices(fetched);
        return st.slices;
      }
    }
  }

  /** Newest first: buffered data, then flushes/truncates in flight (newest first), then slices. */
  private *layers(st: InodeState, idx: number, committed: Slice[]): Generator<Layer<Source>> {
    const dirty = st.dirty.get(idx);
    if (dirty) for (const [start, end] of dirty.ranges) yield { start, end, source: { kind: 'mem', chunk: dirty } };
    const base = idx * this.cs;
    for (let i = st.pending.length - 1; i >= 0; i--) {
      const p = st.pending[i]!;
      if (p.kind === 'zero') {
        yield { start: Math.max(0, p.start - base), end: Math.min(this.cs, p.end - base), source: { kind: 'zero' } };
      } else {
        const c = p.chunks.get(idx);
        if (c) for (const [start, end] of c.ranges) yield { start, end, source: { kind: 'mem', chunk: c } };
      }
    }
    for (const slice of newestFirst(committed)) {
      yield { start: slice.offset, end: slice.offset + slice.len, source: slice.zero ? { kind: 'zero' } : { kind: 'slice', slice } };
    }
  }

  /**
   * Who serves each byte of [cStart, cEnd) of chunk idx, as a read would see it now: null or
   * zero sources are holes (SEEK_HOLE, st_blocks), the rest is data.
   */
  chunkSegments(st: InodeState, idx: number, cStart: number, cEnd: number, committed: Slice[]): Segment<Source>[] {
    return resolveRange(cStart, cEnd, this.layers(st, idx, committed));
  }

  /** Includes buffered data; zeros for holes; short only at EOF (fileSize). */
  async read(st: InodeState, offset: number, length: number, fileSize: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(Math.max(0, Math.min(length, fileSize - offset)));
    return out.subarray(0, await this.readInto(st, offset, out, fileSize));
  }

  /**
   * Fills `target` from `offset` up to its length or EOF (fileSize) and returns the bytes read:
   * holes read as zeros, every byte of the result is written (the target may hold garbage).
   */
  async readInto(st: InodeState, offset: number, target: Buffer, fileSize: number): Promise<number> {
    const end = Math.min(offset + target.length, fileSize);
    if (end <= offset) return 0;
    const giveUpAt = Date.now() + (this.deps.missingWaitMs ?? 30_000);
    for (let attempt = 0; ; attempt++) {
      try {
        await this.readOnce(st, offset, end, target, fileSize);
        return end - offset;
      } catch (err) {
        // A missing object: compaction replaced it (the slice list reloads), or another mount
        // committed it under --writeback and has not uploaded it yet. Never the file's bytes
        // as zeros or older ones: wait up to the S3 timeout, then EIO (the file exists).
        if (!(err instanceof TierfsError && err.code === StatusCode.NOT_FOUND)) throw err;
        if (Date.now() >= giveUpAt) {
          throw new TierfsError(StatusCode.UNAVAILABLE, `read of inode ${st.ino} at ${offset}: a block is still missing after the S3 timeout (${err.message})`);
        }
        st.invalidate();
        await sleep(Math.min(2_000, 25 * 2 ** attempt, Math.max(1, giveUpAt - Date.now())));
      }
    }
  }

  private async readOnce(st: InodeState, start: number, end: number, target: Buffer, fileSize: number): Promise<void> {
    const slices = await this.loadSlices(st);
    // A read that does not continue the previous one (random access) reads small pieces of
    // uncached blocks with ranged GETs instead of fetching whole blocks.
    const random = st.reads > 0 && Math.abs(start - st.lastReadEnd) > 2 * this.bs;
    // From here to the fetches everything is synchronous: buffered bytes are copied as they are now.
    const fetches: Array<Promise<void>> = [];
    for (let idx = Math.floor(start / this.cs); idx * this.cs < end; idx++) {
      const base = idx * this.cs;
      const cStart = Math.max(start, base) - base;
      const cEnd = Math.min(end, base + this.cs) - base;
      for (const seg of resolveRange(cStart, cEnd, this.layers(st, idx, slices.get(idx) ?? []))) {
        const src = seg.source;
        const at = base + seg.start - start;
        if (src === null || src.kind === 'zero') {
          target.fill(0, at, at + seg.end - seg.start);
        } else if (src.kind === 'mem') {
          src.chunk.copyOut(seg.start, seg.end, target, at);
        } else {
          for (const p of objectPieces(src.slice, seg.start, seg.end, this.bs)) {
            const key = sliceBlockKey(this.deps.fsId, st.ino, idx, this.bpc, src.slice, p.blockIndex);
            fetches.push(this.deps.blocks.readInto(key, p.objectSize, p.from, p.len, target, base + p.chunkPos - start, random));
          }
        }
      }
    }
    this.readAhead(st, slices, start, end, fileSize);
    if (fetches.length === 1) return fetches[0];
    // Every copy settles before a retry can write the same range again from other slices.
    const failed = (await Promise.allSettled(fetches)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /**
   * The block objects that hold the committed bytes of [0, fileSize): what a reader of the
   * whole file would fetch (objects shadowed by newer slices or truncated away are left out).
   */
  async visibleObjects(st: InodeState, fileSize: number): Promise<Array<{ key: string; size: number }>> {
    const slices = await this.loadSlices(st);
    const out = new Map<string, number>();
    for (const [idx, list] of slices) {
      const base = idx * this.cs;
      if (base >= fileSize) continue;
      const layers = newestFirst(list).map((slice) => ({ start: slice.offset, end: slice.offset + slice.len, source: slice }));
      for (const seg of resolveRange(0, Math.min(this.cs, fileSize - base), layers)) {
        if (seg.source === null || seg.source.zero) continue;
        for (const p of objectPieces(seg.source, seg.start, seg.end, this.bs)) {
          out.set(sliceBlockKey(this.deps.fsId, st.ino, idx, this.bpc, seg.source, p.blockIndex), p.objectSize);
        }
      }
    }
    return [...out].map(([key, size]) => ({ key, size }));
  }

  /**
   * Readahead. A read that continues the previous one grows the stream's window (two blocks,
   * then doubling up to readaheadBlocks, within the memory bound) and prefetches up to the
   * window past the read; a jump resets it. The first read of a small file prefetches all of
   * it. Prefetch stops at the first block the BlockReader has no room for, and the next read
   * carries on from there, so no block of the window is skipped.
   */
  private readAhead(st: InodeState, slices: ChunkSlices, start: number, end: number, fileSize: number): void {
    const first = st.reads++ === 0;
    // Reads of one stream may arrive a little out of order (the kernel sends several at once).
    const near = Math.abs(start - st.lastReadEnd) <= 2 * this.bs;
    const sequential = near && end > st.lastReadEnd;
    if (!near || end > st.lastReadEnd) st.lastReadEnd = end;
    if (near && !sequential) return; // an earlier piece of the stream, arriving late
    if (this.deps.readaheadBlocks <= 0) return;
    const maxWindow = Math.max(this.bs, Math.min(this.deps.readaheadBlocks * this.bs, this.deps.readaheadMaxBytes));
    if (first && fileSize <= Math.min(this.deps.smallFileBytes, maxWindow)) {
      st.readaheadWindow = maxWindow;
      st.readaheadUntil = end;
      this.prefetchRange(st, slices, end, fileSize);
      return;
    }
    if (!sequential) {
      st.readaheadWindow = 0;
      st.readaheadUntil = end;
      return;
    }
    const from = Math.max(end, st.readaheadUntil);
    let until = Math.min(fileSize, end + Math.max(2 * this.bs, st.readaheadWindow));
    if (until <= from || (until - from < this.bs && until < fileSize)) return; // a block at a time
    // The stream crossed into another block: it earns a window twice as large.
    st.readaheadWindow = Math.min(maxWindow, Math.max(2 * this.bs, st.readaheadWindow * 2));
    until = Math.min(fileSize, end + st.readaheadWindow);
    this.prefetchRange(st, slices, from, until);
  }

  /** Prefetches the committed blocks of [from, until); readaheadUntil ends where it stopped. */
  private prefetchRange(st: InodeState, slices: ChunkSlices, from: number, until: number): void {
    st.readaheadUntil = until;
    for (let idx = Math.floor(from / this.cs); idx * this.cs < until; idx++) {
      const base = idx * this.cs;
      const cStart = Math.max(from, base) - base;
      const cEnd = Math.min(until, base + this.cs) - base;
      for (const seg of resolveRange(cStart, cEnd, this.layers(st, idx, slices.get(idx) ?? []))) {
        if (seg.source?.kind !== 'slice') continue;
        const slice = seg.source.slice;
        for (const p of objectPieces(slice, seg.start, seg.end, this.bs)) {
          if (!this.deps.blocks.prefetch(sliceBlockKey(this.deps.fsId, st.ino, idx, this.bpc, slice, p.blockIndex), p.objectSize)) {
            st.readaheadUntil = Math.max(from, base + p.chunkPos); // no room now: resume here on the next read
            return;
          }
        }
      }
    }
  }
}
