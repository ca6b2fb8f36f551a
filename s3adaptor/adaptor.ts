// S3Adaptor: file ranges -> chunks -> slices -> block objects (DESIGN.md §2, §3). Writes go
// to a per-inode, per-chunk memory buffer; flushes cut it into block objects, staged in the
// disk cache with writeback (else put to S3, then cached), and commit slices through the
// SliceStore. Reads merge buffered data, flushes in flight and committed slices newest
// first, and fetch whole blocks through the memory LRU, the disk cache and S3.
import type { Registry } from 'prom-client';
import { silentLogger, type Logger } from '../common/log.js';
import { StatusCode, TierfsError } from '../common/status.js';
import type { DiskCache, DiskCacheStats } from '../diskcache/index.js';
import { counter, gauge } from '../diskcache/metrics-util.js';
import { BlockReader, type BlockReaderStats } from './block-reader.js';
import { ChunkIdBatch } from './chunk-ids.js';
import { ChunkCompactor, ownedKeys } from './compaction.js';
import { InodeState } from './inode-state.js';
import { sliceBlockKey } from './keys.js';
import { shadowedSlices, sliceObjects } from './layout.js';
import { ReadPath } from './read-path.js';
import { planCopy } from './copy-range.js';
import { FileExtents } from './extents.js';
import { AppendWriter, type AppendTimes } from './append.js';
import { CacheControl, type EvictResult, type WarmupResult } from './cache-control.js';
import type { DiskCacheLimits } from '../diskcache/index.js';
import { runLimited } from './run-limited.js';
import type { ObjectStore, ObjectStoreStats } from './object-store.js';
import type { AppendPlaced, ChunkIdAllocator, ChunkSlices, FileAttrs, Slice, SliceStore } from './types.js';
import { DirtyChunk, PagePool, type PendingData, type PendingZero } from './write-buffer.js';

export interface S3AdaptorOptions {
  fsId: number;
  chunkSize: number;
  blockSize: number;
  objectStore: ObjectStore;
  sliceStore: SliceStore;
  chunkIds: ChunkIdAllocator;
  diskCache?: DiskCache | null;
  /** Write buffer budget (default 512 MiB); writers wait when it is used up. */
  memBudgetBytes?: number;
  /** Memory read cache (default 256 MiB). */
  readCacheBytes?: number;
  /** Buffered data older than this is flushed (default 5 s). */
  flushAgeMs?: number;
  /** close/flush return once blocks are staged and slices committed (default false: wait for S3). */
  writeback?: boolean;
  /** Blocks prefetched ahead of sequential reads (default 4). */
  readaheadBlocks?: number;
  /** Compact a chunk holding more slices than this (default 20; 0 disables). */
  compactThreshold?: number;
  /** Block objects written at once per flush (default 8). */
  blockWriteConcurrency?: number;
  /**
   * A sequential run of whole blocks this long (default a quarter chunk) is flushed while the
   * rest of the chunk is still being written: uploads (or staging) overlap the writing, and
   * close waits for at most this much instead of a whole chunk.
   */
  flushRunBytes?: number;
  /** Chunk ids asked of the allocator at once (default 1000). */
  chunkIdBatch?: number;
  registry?: Registry;
  logger?: Logger;
}

export interface S3AdaptorStats {
  memUsedBytes: number;
  memBudgetBytes: number;
  dirtyBytes: number;
  pendingFlushes: number;
  inodes: number;
  flushes: number;
  flushedBytes: number;
  directPuts: number;
  compactions: number;
  compactionConflicts: number;
  /** Slices dropped because newer ones cover every byte of them (rewrites, truncates). */
  droppedShadowedSlices: number;
  /** copy_file_range calls served by reference, and the bytes they referenced (none moved). */
  copies: number;
  copiedBytes: number;
  read: BlockReaderStats;
  disk: DiskCacheStats | null;
  s3: ObjectStoreStats;
}

const RETRYABLE = new Set<string>([StatusCode.UNAVAILABLE, StatusCode.TIMEOUT, StatusCode.NOT_LEADER, StatusCode.BUSY, StatusCode.STALE_EPOCH]);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class S3Adaptor {
  private readonly fsId: number;
  private readonly cs: number;
  private readonly bs: number;
  /** Blocks per chunk. */
  private readonly bpc: number;
  private readonly store: ObjectStore;
  private readonly sliceStore: SliceStore;
  private readonly disk: DiskCache | null;
  private readonly chunkIds: ChunkIdBatch;
  private readonly blocks: BlockReader;
  private readonly compactor: ChunkCompactor;
  private readonly log: Logger;
  private readonly inodes = new Map<number, InodeState>();
  private readonly memBudget: number;
  private readonly flushAgeMs: number;
  private readonly writeback: boolean;
  private readonly reads: ReadPath;
  private readonly extents: FileExtents;
  private readonly cacheControl: CacheControl;
  private readonly appends: AppendWriter;
  private readonly compactThreshold: number;
  private readonly blockWriteConcurrency: number;
  private readonly flushRunBytes: number;
  private memUsed = 0;
  private readonly pages: PagePool;
  private memWaiters: Array<() => void> = [];
  private closed = false;
  private readonly timer: NodeJS.Timeout;
  private readonly counts = { flushes: 0, flushedBytes: 0, directPuts: 0, copies: 0, copiedBytes: 0 };
  private readonly metrics;

  constructor(opts: S3AdaptorOptions) {
    if (!(opts.blockSize > 0 && opts.chunkSize % opts.blockSize === 0)) {
      throw new TierfsError(StatusCode.INVALID_ARGUMENT, `chunkSize ${opts.chunkSize} must be a multiple of blockSize ${opts.blockSize}`);
    }
    this.fsId = opts.fsId;
    this.cs = opts.chunkSize;
    this.bs = opts.blockSize;
    this.bpc = opts.chunkSize / opts.blockSize;
    this.store = opts.objectStore;
    this.sliceStore = opts.sliceStore;
    this.disk = opts.diskCache ?? null;
    this.log = opts.logger ?? silentLogger;
    this.memBudget = opts.memBudgetBytes ?? 512 * 2 ** 20;
    // Enough idle pages for a chunk being written and two flushing (at most a quarter of the budget).
    this.pages = new PagePool(this.bs, Math.min(3 * this.bpc, Math.floor(this.memBudget / 4 / this.bs)));
    this.flushAgeMs = opts.flushAgeMs ?? 5_000;
    this.writeback = opts.writeback ?? false;
    this.compactThreshold = opts.compactThreshold ?? 20;
    this.blockWriteConcurrency = opts.blockWriteConcurrency ?? 8;
    const run = opts.flushRunBytes ?? opts.chunkSize / 4;
    this.flushRunBytes = Math.min(opts.chunkSize, Math.max(1, Math.ceil(run / opts.blockSize)) * opts.blockSize);
    this.chunkIds = new ChunkIdBatch(opts.chunkIds, opts.chunkIdBatch ?? 1000);
    const readahead = opts.readaheadBlocks ?? 4;
    this.blocks = new BlockReader(this.store, this.disk, opts.readCacheBytes ?? 256 * 2 ** 20, Math.max(1, readahead * 2), this.log);
    this.reads = new ReadPath({ fsId: this.fsId, chunkSize: this.cs, blockSize: this.bs, readaheadBlocks: readahead, sliceStore: this.sliceStore, blocks: this.blocks });
    this.extents = new FileExtents(this.cs, this.reads);
    this.cacheControl = new CacheControl({ fsId: this.fsId, chunkSize: this.cs, blockSize: this.bs, reads: this.reads, blocks: this.blocks, disk: this.disk, concurrency: 8 });
    this.compactor = new ChunkCompactor({
      fsId: this.fsId,
      blockSize: this.bs,
      chunkSize: this.cs,
      store: this.store,
      sliceStore: this.sliceStore,
      blocks: this.blocks,
      disk: this.disk,
      threshold: this.compactThreshold,
      logger: this.log,
      settled: async (ino) => {
        const st = this.inodes.get(ino);
        if (st) await Promise.allSettled([...st.inFlight]);
      },
      onSwapped: (ino) => this.inodes.get(ino)?.invalidate(),
    });
    this.appends = new AppendWriter({
      fsId: this.fsId, chunkSize: this.cs, blockSize: this.bs, sliceStore: this.sliceStore, blockWriteConcurrency: this.blockWriteConcurrency, logger: this.log,
      reserveId: async (st) => (await this.chunkIds.reserve(1, this.newestChunkId(st)))[0]!,
      storeBlock: (st, key, body) => this.storeBlock(st, { holds: [] as Array<Promise<unknown>> } as PendingData, key, body),
      committed: (st, idxs) => this.maybeCompact(st, idxs),
    });
    this.metrics = {
      memUsed: gauge(opts.registry, 'tierfs_s3adaptor_write_buffer_bytes', 'bytes held by write buffers (dirty and flushing)'),
      flushes: counter(opts.registry, 'tierfs_s3adaptor_flushes_total', 'write buffer flushes committed'),
      flushedBytes: counter(opts.registry, 'tierfs_s3adaptor_flushed_bytes_total', 'bytes flushed into block objects'),
      directPuts: counter(opts.registry, 'tierfs_s3adaptor_direct_puts_total', 'blocks put straight to S3 (no writeback, or the disk cache full or absent)'),
    };
    this.timer = setInterval(() => this.tick(), Math.max(50, Math.min(1_000, this.flushAgeMs / 2)));
    this.timer.unref();
  }

  private inode(ino: number): InodeState {
    let st = this.inodes.get(ino);
    if (!st) {
      st = new InodeState(ino);
      this.inodes.set(ino, st);
    }
    st.lastUsed = Date.now();
    return st;
  }

  private checkOpen(): void {
    if (this.closed) throw new TierfsError(StatusCode.UNAVAILABLE, 's3 adaptor is closed');
  }

  // ---- write buffer and memory budget ----

  async write(ino: number, offset: number, data: Buffer): Promise<void> {
    this.checkOpen();
    const st = this.inode(ino);
    const len = data.length;
    for (let pos = 0; pos < data.length; ) {
      const fileOff = offset + pos;
      const idx = Math.floor(fileOff / this.cs);
      const cOff = fileOff - idx * this.cs;
      const n = Math.min(data.length - pos, (Math.floor(cOff / this.bs) + 1) * this.bs - cOff); // at most one new page per step
      let chunk = st.dirty.get(idx);
      const need = chunk ? chunk.newPagesFor(cOff, cOff + n) * this.bs : this.bs;
      if (need > 0 && this.memUsed > 0 && this.memUsed + need > this.memBudget) {
        await this.waitForMemory(need);
        // The caller's buffer may be a FUSE request's that was detached while we waited (the
        // request timed out and was answered): never buffer what is no longer there.
        if (data.length !== len) throw new TierfsError(StatusCode.TIMEOUT, 'write buffer went away while waiting for memory');
        continue; // the chunk may have been flushed meanwhile
      }
      if (!chunk) {
        chunk = new DirtyChunk(this.bs, this.pages);
        st.dirty.set(idx, chunk);
      }
      const before = chunk.bytes;
      chunk.write(cOff, data.subarray(pos, pos + n));
      this.memUsed += chunk.bytes - before;
      pos += n;
      if (chunk.isFull(this.cs) || this.runComplete(chunk, cOff + n)) this.background(st, this.flushChunks(st, [idx]));
    }
    if (this.memUsed >= 0.7 * this.memBudget) this.relievePressure();
    this.metrics.memUsed.set(this.memUsed);
  }

  /**
   * Whether a sequential writer just completed a run worth flushing: one dirty range that ends
   * where this step ended, on a block boundary, and spans flushRunBytes. Later writes to the
   * chunk start a new buffer, so the flushed slices tile the chunk on block boundaries.
   */
  private runComplete(chunk: DirtyChunk, end: number): boolean {
    if (chunk.ranges.length !== 1 || end % this.bs !== 0) return false;
    const [s, e] = chunk.ranges[0]!;
    return e === end && e - s >= this.flushRunBytes;
  }

  private async waitForMemory(need: number): Promise<void> {
    while (this.memUsed > 0 && this.memUsed + need > this.memBudget) {
      this.checkOpen();
      this.relievePressure();
      await new Promise<void>((resolve) => this.memWaiters.push(resolve));
    }
  }

  private release(bytes: number): void {
    this.memUsed -= bytes;
    this.metrics.memUsed.set(this.memUsed);
    const waiters = this.memWaiters;
    this.memWaiters = [];
    for (const w of waiters) w();
  }

  /** Flushes the oldest buffered chunks until at most half the budget is left dirty. */
  private relievePressure(): void {
    const all: Array<{ st: InodeState; idx: number; chunk: DirtyChunk }> = [];
    let dirty = 0;
    for (const st of this.inodes.values()) {
      for (const [idx, chunk] of st.dirty) {
        all.push({ st, idx, chunk });
        dirty += chunk.bytes;
      }
    }
    all.sort((a, b) => a.chunk.firstWriteAt - b.chunk.firstWriteAt);
    for (const { st, idx, chunk } of all) {
      if (dirty <= this.memBudget / 2 && this.memUsed < this.memBudget) break;
      dirty -= chunk.bytes;
      this.background(st, this.flushChunks(st, [idx]));
    }
  }

  private tick(): void {
    const now = Date.now();
    this.pages.trim(10_000);
    for (const [ino, st] of this.inodes) {
      const old = [...st.dirty].filter(([, c]) => now - c.firstWriteAt >= this.flushAgeMs).map(([idx]) => idx);
      if (old.length > 0) this.background(st, this.flushChunks(st, old));
      if (st.idle && now - st.lastUsed > 60_000) this.inodes.delete(ino); // bound the slice cache
    }
  }

  /** Errors of flushes nobody waits for are kept and reported by the next flush/fsync. */
  private background(st: InodeState, p: Promise<void>): void {
    p.catch((err: unknown) => {
      st.error ??= err instanceof Error ? err : new Error(String(err));
      this.log.warn({ ino: st.ino, err: String(err) }, 'background flush failed');
    });
  }

  private track(st: InodeState, p: Promise<void>): Promise<void> {
    st.inFlight.add(p);
    p.catch(() => {}).finally(() => st.inFlight.delete(p));
    return p;
  }

  // ---- flush: buffer -> block objects -> slices ----

  /** Snapshots dirty chunks (all when idxs is omitted) and commits them; the order of ids is taken now. */
  private flushChunks(st: InodeState, idxs?: number[], attrs?: FileAttrs): Promise<void> {
    const chunks = new Map<number, DirtyChunk>();
    let bytes = 0;
    let ranges = 0;
    for (const idx of idxs ?? [...st.dirty.keys()]) {
      const c = st.dirty.get(idx);
      if (!c) continue;
      st.dirty.delete(idx);
      if (c.ranges.length === 0) {
        this.release(c.bytes);
        continue;
      }
      chunks.set(idx, c);
      bytes += c.bytes;
      ranges += c.ranges.length;
    }
    if (chunks.size === 0) return Promise.resolve();
    const entry: PendingData = { kind: 'data', chunks, bytes, committed: false, holds: [], recyclable: false };
    st.pending.push(entry);
    return this.track(st, this.commitData(st, entry, this.chunkIds.reserve(ranges, this.newestChunkId(st)), attrs));
  }

  /** The newest chunk id among the inode's committed slices (other mounts' included): new ids must be above it. */
  private async newestChunkId(st: InodeState): Promise<number> {
    let max = 0;
    for (const list of (await this.reads.loadSlices(st)).values()) for (const s of list) if (s.chunkId > max) max = s.chunkId;
    return max;
  }

  private async commitData(st: InodeState, entry: PendingData, idsP: Promise<number[]>, attrs?: FileAttrs): Promise<void> {
    try {
      const ids = await idsP;
      let k = 0;
      const added = new Map<number, Slice[]>();
      const writes: Array<() => Promise<void>> = [];
      for (const [idx, chunk] of entry.chunks) {
        const list: Slice[] = [];
        for (const [s, e] of chunk.ranges) {
          const slice: Slice = { chunkId: ids[k++]!, compaction: 0, offset: s, len: e - s, size: e - s, zero: false };
          list.push(slice);
          for (const obj of sliceObjects(slice, this.bs)) {
            const key = sliceBlockKey(this.fsId, st.ino, idx, this.bpc, slice, obj.blockIndex);
            writes.push(() => this.storeBlock(st, entry, key, chunk.view(obj.chunkStart, obj.chunkStart + obj.size)));
          }
        }
        added.set(idx, list);
      }
      await runLimited(writes, this.blockWriteConcurrency);
      entry.recyclable = true; // every block write settled (runLimited waits for all)
      await this.appendSlices(st.ino, added, attrs);
      st.addCommitted(added);
      this.counts.flushes++;
      this.counts.flushedBytes += [...added.values()].flat().reduce((n, s) => n + s.len, 0);
      this.metrics.flushes.inc();
      this.maybeCompact(st, [...added.keys()]);
    } finally {
      // On failure the data is dropped (the error reaches the next flush/fsync) so later
      // entries are not held back forever.
      entry.committed = true;
      this.releaseCommitted(st);
    }
  }

  /**
   * Writeback: stages the block (fsynced) or, when the disk cache is full or absent, puts it
   * to S3. Without writeback close waits for S3 anyway, so the block goes straight to S3 and
   * into the read cache afterwards (no fsynced local copy that is read back for the upload).
   */
  private async storeBlock(st: InodeState, entry: PendingData, key: string, body: Buffer): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      if (this.writeback && this.disk?.canStage(body.length) && (await this.disk.stage(key, body))) {
        const up = this.disk.uploaded(key);
        st.uploads.add(up);
        up.catch(() => {}).finally(() => st.uploads.delete(up));
        return;
      }
      try {
        await this.store.put(key, body);
        this.counts.directPuts++;
        this.metrics.directPuts.inc();
        if (this.disk && !this.writeback) {
          entry.holds.push(this.disk.put(key, body).catch((err: unknown) => this.log.debug({ key, err: String(err) }, 'could not cache a written block')));
        }
        return;
      } catch (err) {
        if (this.closed) throw err;
        // Keep the data in memory (writers wait on the budget) until S3 or the cache has room.
        this.log.warn({ key, attempt, err: String(err) }, 'block write failed, retrying');
        await sleep(Math.min(5_000, 100 * 2 ** Math.min(attempt, 6)));
      }
    }
  }

  private async appendSlices(ino: number, added: Map<number, Slice[]>, attrs?: FileAttrs): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        if (attrs && this.sliceStore.appendSlicesAndAttrs) await this.sliceStore.appendSlicesAndAttrs(ino, added, attrs);
        else await this.sliceStore.appendSlices(ino, added);
        return;
      } catch (err) {
        if (this.closed || attempt >= 30 || !(err instanceof TierfsError && RETRYABLE.has(err.code))) throw err;
        await sleep(Math.min(2_000, 50 * 2 ** Math.min(attempt, 6)));
      }
    }
  }

  private releaseCommitted(st: InodeState): void {
    while (st.pending[0]?.committed) {
      const e = st.pending.shift()!;
      if (e.kind === 'data') {
        this.release(e.bytes);
        this.recycle(e);
      }
    }
  }

  /** Pages of a flush that is out of st.pending (no new reader finds it) go back to the pool. */
  private recycle(e: PendingData): void {
    if (!e.recyclable) return; // a failed flush may still have block writes using them: leave them to GC
    const give = () => {
      for (const c of e.chunks.values()) this.pages.give(c.pages.values());
    };
    if (e.holds.length === 0) give();
    else void Promise.allSettled(e.holds).then(give);
  }

  private maybeCompact(st: InodeState, idxs: number[]): void {
    if (this.closed) return;
    if (!st.slices) {
      // Slice counts are known only with the slices cached: load them once, then check.
      this.reads.loadSlices(st).then(
        () => this.maybeCompact(st, idxs),
        (err: unknown) => this.log.debug({ ino: st.ino, err: String(err) }, 'slice load for compaction check failed'),
      );
      return;
    }
    for (const idx of idxs) {
      const list = st.slices.get(idx) ?? [];
      if ((this.compactThreshold > 0 && list.length > this.compactThreshold) || shadowedSlices(list).length > 0) this.compactor.schedule(st.ino, idx);
    }
  }

  /** Waits for every flush of the inode issued so far (after starting one for its dirty data). */
  private async settle(st: InodeState): Promise<void> {
    this.background(st, this.flushChunks(st));
    await Promise.allSettled([...st.inFlight]);
    if (st.error) {
      const err = st.error;
      st.error = null;
      throw err;
    }
  }

  async flush(ino: number): Promise<void> {
    const st = this.inodes.get(ino);
    if (!st) return;
    await this.settle(st);
    if (!this.writeback) await Promise.all([...st.uploads]);
  }

  /**
   * flush that also commits the file's size and times with its last slices (one metaserver
   * write for both). Only when no earlier flush is still in flight, so the attributes never
   * commit ahead of data that could still fail; returns false when they were not committed
   * (nothing buffered, flushes in flight, or a slice store without the combined write).
   */
  async flushWithAttrs(ino: number, attrs: FileAttrs): Promise<boolean> {
    const st = this.inodes.get(ino);
    const buffered = st ? [...st.dirty.values()].some((c) => c.ranges.length > 0) : false;
    if (!st || !buffered || !this.sliceStore.appendSlicesAndAttrs || st.inFlight.size > 0 || st.error) {
      await this.flush(ino);
      return false;
    }
    this.background(st, this.flushChunks(st, undefined, attrs));
    await this.flush(ino);
    return true;
  }

  /**
   * O_APPEND: stores `data` and has the metaserver place it at the end of the file as it
   * finds it at commit (append.ts); resolves with where it landed. The caller commits this
   * mount's positional writes of the inode first. At most one chunk.
   */
  async appendAtEnd(ino: number, data: Buffer, times: AppendTimes, guess: number): Promise<AppendPlaced> {
    this.checkOpen();
    return this.appends.append(this.inode(ino), data, times, guess);
  }

  async fsync(ino: number): Promise<void> {
    const st = this.inodes.get(ino);
    if (st) await this.settle(st); // staged blocks are fsynced: durable on local disk
  }

  async flushAll(): Promise<void> {
    await Promise.all([...this.inodes.keys()].map((ino) => this.flush(ino)));
  }

  async waitUploaded(): Promise<void> {
    await this.disk?.flush();
  }

  // ---- truncate ----

  async truncate(ino: number, oldSize: number, newSize: number): Promise<void> {
    this.checkOpen();
    const st = this.inode(ino);
    for (const [idx, c] of [...st.dirty]) {
      const base = idx * this.cs;
      if (base >= newSize) {
        st.dirty.delete(idx);
        this.release(c.bytes);
      } else if (base + this.cs > newSize) {
        this.release(c.truncate(newSize - base));
      }
    }
    if (newSize === oldSize) return;
    // Shrink masks everything from newSize on; grow masks [oldSize, newSize) where data exists.
    const entry: PendingZero = { kind: 'zero', start: Math.min(oldSize, newSize), end: newSize < oldSize ? Infinity : newSize, committed: false };
    st.pending.push(entry);
    await this.track(st, this.commitZero(st, entry, this.chunkIds.reserve(1, this.newestChunkId(st))));
  }

  private async commitZero(st: InodeState, entry: PendingZero, idsP: Promise<number[]>): Promise<void> {
    try {
      const [id] = await idsP;
      const committed = await this.reads.loadSlices(st);
      const added = new Map<number, Slice[]>();
      const first = Math.floor(entry.start / this.cs);
      const candidates = new Set<number>([...committed.keys()].filter((i) => i >= first));
      for (const e of st.pending) {
        if (e === entry) break;
        if (e.kind === 'data') for (const i of e.chunks.keys()) if (i >= first) candidates.add(i);
      }
      for (const idx of candidates) {
        const base = idx * this.cs;
        const s = Math.max(0, entry.start - base);
        const e = Math.min(this.cs, entry.end - base);
        if (e <= s || !this.chunkHasData(st, entry, idx, s, e, committed.get(idx) ?? [])) continue;
        added.set(idx, [{ chunkId: id!, compaction: 0, offset: s, len: e - s, size: 0, zero: true }]);
      }
      if (added.size > 0) {
        await this.appendSlices(st.ino, added);
        st.addCommitted(added);
      }
    } finally {
      entry.committed = true;
      this.releaseCommitted(st);
    }
  }

  /** Whether anything older than `entry` holds data in [s, e) of the chunk. */
  private chunkHasData(st: InodeState, entry: PendingZero, idx: number, s: number, e: number, committed: Slice[]): boolean {
    if (committed.some((x) => !x.zero && x.offset < e && x.offset + x.len > s)) return true;
    for (const p of st.pending) {
      if (p === entry) break;
      if (p.kind === 'data' && p.chunks.get(idx)?.ranges.some(([a, b]) => a < e && b > s)) return true;
    }
    return false;
  }

  /** Includes buffered data not yet flushed; zeros for holes; short only at EOF (fileSize). */
  async read(ino: number, offset: number, length: number, fileSize: number): Promise<Buffer> {
    this.checkOpen();
    return this.reads.read(this.inode(ino), offset, length, fileSize);
  }

  /** read() into the caller's buffer (up to its length); returns the bytes read. */
  async readInto(ino: number, offset: number, target: Buffer, fileSize: number): Promise<number> {
    this.checkOpen();
    return this.reads.readInto(this.inode(ino), offset, target, fileSize);
  }

  invalidate(ino: number): void {
    this.inodes.get(ino)?.invalidate();
  }

  /**
   * The inode was just created (not found existing) by this mount: its slices are known to be
   * none, so its first flush does not fetch them from the metaserver.
   */
  markNew(ino: number): void {
    const st = this.inode(ino);
    if (!st.slices && !st.loading) st.slices = new Map();
  }

  // ---- copy by reference, fallocate, SEEK_DATA/SEEK_HOLE, st_blocks ----

  /**
   * copy_file_range by reference: [srcOffset, srcOffset + length) of srcIno (clamped to
   * srcSize) becomes [dstOffset, ...) of dstIno without moving a byte. The source's buffered
   * data is committed first; the source slices read are marked shared (so no per-inode path
   * deletes their objects) before the destination's referencing slices commit. Returns the
   * bytes copied. The destination's size is the caller's to set (like a write's). Overlapping
   * ranges of one inode are INVALID_ARGUMENT, as for copy_file_range(2).
   */
  async copyRange(srcIno: number, srcOffset: number, dstIno: number, dstOffset: number, length: number, srcSize: number): Promise<number> {
    this.checkOpen();
    const len = Math.max(0, Math.min(length, srcSize - srcOffset));
    if (len === 0) return 0;
    if (srcIno === dstIno && srcOffset < dstOffset + len && dstOffset < srcOffset + len) {
      throw new TierfsError(StatusCode.INVALID_ARGUMENT, `copy of inode ${srcIno} onto itself overlaps: [${srcOffset}, +${len}) to [${dstOffset}, +${len})`);
    }
    const src = this.inode(srcIno);
    const dst = this.inode(dstIno);
    // Buffered source data must be in objects to be referenced; buffered destination data is
    // older than the copy and must end up under it (its flush gets an id below the copy's).
    await this.settle(src);
    if (dst !== src) await this.settle(dst);
    for (let attempt = 0; ; attempt++) {
      const srcSlices = await this.sliceStore.getSlices(srcIno);
      const dstSlices = dst === src ? srcSlices : await this.reads.loadSlices(dst);
      const plan = planCopy({ srcIno, srcOffset, dstOffset, length: len, chunkSize: this.cs, src: srcSlices, dst: dstSlices });
      try {
        for (const [idx, owned] of plan.toShare) {
          await this.sliceStore.replaceSlices(srcIno, idx, owned, owned.map((s) => ({ ...s, shared: true })));
        }
      } catch (err) {
        // The source changed under the plan (a compaction swapped the slices): plan again.
        if (!(err instanceof TierfsError && err.code === StatusCode.TX_CONFLICT) || attempt >= 8) throw err;
        continue;
      } finally {
        if (plan.toShare.size > 0) src.invalidate();
      }
      if (plan.added.size === 0) return len;
      const [id] = await this.chunkIds.reserve(1, this.newestChunkId(dst));
      for (const list of plan.added.values()) for (const s of list) s.chunkId = id!;
      await this.appendSlices(dstIno, plan.added);
      dst.addCommitted(plan.added);
      this.counts.copies++;
      this.counts.copiedBytes += plan.referencedBytes;
      this.maybeCompact(dst, [...plan.added.keys()]);
      return len;
    }
  }

  /**
   * FALLOC_FL_PUNCH_HOLE (always with KEEP_SIZE): [offset, offset + length) reads as zeros and
   * holds no data; nothing past size changes. Buffered data of the range is flushed first so
   * that the mask, committed after it, hides it (zero slices only where data exists).
   */
  async punchHole(ino: number, offset: number, length: number, size: number): Promise<void> {
    const end = Math.min(offset + length, size);
    if (end > offset) await this.mask(ino, offset, end);
  }

  /**
   * FALLOC_FL_ZERO_RANGE: the range reads as zeros (held as zero slices, no objects). Returns
   * the size the file must have: grown to offset + length unless keepSize.
   */
  async zeroRange(ino: number, offset: number, length: number, size: number, keepSize = false): Promise<number> {
    if (length > 0) await this.mask(ino, offset, offset + length);
    return keepSize ? size : Math.max(size, offset + length);
  }

  /**
   * fallocate default mode (and KEEP_SIZE): returns the size the file must have. Nothing is
   * stored: unwritten ranges already read as zeros, and there is no space to reserve — the
   * object store has no capacity the mount could run out of, a full disk cache makes writes
   * go straight to S3, and a full write buffer makes writers wait — so a later write into the
   * range cannot fail for lack of space. Growing masks [size, new size) like a truncate.
   */
  async allocate(ino: number, offset: number, length: number, size: number, keepSize = false): Promise<number> {
    const end = offset + length;
    if (keepSize || end <= size) return size;
    await this.truncate(ino, size, end);
    return end;
  }

  private async mask(ino: number, start: number, end: number): Promise<void> {
    this.checkOpen();
    const st = this.inode(ino);
    const idxs = [...st.dirty.keys()].filter((idx) => idx * this.cs < end && (idx + 1) * this.cs > start);
    if (idxs.length > 0) this.background(st, this.flushChunks(st, idxs)); // takes its ids before the mask's
    const entry: PendingZero = { kind: 'zero', start, end, committed: false };
    st.pending.push(entry);
    await this.track(st, this.commitZero(st, entry, this.chunkIds.reserve(1, this.newestChunkId(st))));
  }

  /** lseek SEEK_DATA: the first data offset at or after `offset`; BEYOND_EOF (ENXIO) if none before size. */
  async seekData(ino: number, offset: number, size: number): Promise<number> {
    this.checkOpen();
    return this.extents.seekData(this.inode(ino), offset, size);
  }

  /** lseek SEEK_HOLE: the first hole at or after `offset` (size if none); BEYOND_EOF (ENXIO) at or past size. */
  async seekHole(ino: number, offset: number, size: number): Promise<number> {
    this.checkOpen();
    return this.extents.seekHole(this.inode(ino), offset, size);
  }

  /**
   * Bytes the file holds as data (st_blocks = ceil(bytes / 512)): buffered data and slices
   * still visible, not holes nor zero slices; a sparse file reports what was written. Served
   * from the cached slices (one metaserver read when the inode is not cached).
   */
  async allocatedBytes(ino: number): Promise<number> {
    this.checkOpen();
    return this.extents.allocatedBytes(this.inode(ino));
  }

  /**
   * allocatedBytes when the inode's slices are cached here (open or recently used), else null:
   * never a metaserver read, for replies of many entries at once (readdirplus), where the
   * caller may fall back to the size.
   */
  cachedAllocatedBytes(ino: number): number | null {
    const st = this.inodes.get(ino);
    return st ? this.extents.cachedAllocatedBytes(st) : null;
  }

  // ---- cache tuning (`tierfs cache warmup|evict|config`) ----

  /** Fetches the blocks of the file's first fileSize bytes into the disk cache. */
  warmup(ino: number, fileSize: number): Promise<WarmupResult> {
    this.checkOpen();
    return this.cacheControl.warmup(this.inode(ino), fileSize);
  }

  /** Drops cached blocks of one inode, or of all (null); staged blocks stay. */
  evict(ino: number | null): Promise<EvictResult> {
    this.checkOpen();
    return ino === null ? this.cacheControl.evictAll() : this.cacheControl.evict(this.inode(ino));
  }

  /** Reads, or changes then reads, the disk cache limits; null without a disk cache. */
  cacheLimits(changes?: Partial<DiskCacheLimits>): DiskCacheLimits | null {
    return this.cacheControl.limits(changes);
  }

  // ---- deletion, compaction, lifecycle ----

  /**
   * Deletes the objects these slices own (trash of a deleted inode); idempotent. References
   * and shared slices keep their objects (another inode may read them). A slice counts as
   * shared if the caller's list or the SliceStore's current one says so: the caller may
   * have read the slices before a copy marked them.
   */
  async deleteObjects(ino: number, slices: ChunkSlices): Promise<void> {
    const fresh = await this.sliceStore.getSlices(ino).catch((err: unknown) => {
      if (err instanceof TierfsError && err.code === StatusCode.NOT_FOUND) return new Map<number, Slice[]>();
      throw err;
    });
    const keys: string[] = [];
    for (const [idx, list] of slices) {
      const now = fresh.get(idx) ?? [];
      for (const s of list) {
        const markedSince = now.some((x) => x.shared && (!x.ref || x.refOwned) && x.chunkId === s.chunkId && x.compaction === s.compaction && x.offset === s.offset && x.len === s.len);
        if (!markedSince) keys.push(...ownedKeys(this.fsId, ino, idx, s, this.bs, this.cs));
      }
    }
    for (const key of keys) {
      this.blocks.drop(key);
      await this.disk?.remove(key);
    }
    await this.store.deleteMany(keys);
    const st = this.inodes.get(ino);
    if (st?.idle) this.inodes.delete(ino);
  }

  /** Compacts one chunk now if it is fragmented (force: whenever it has 2+ slices). */
  async compact(ino: number, chunkIndex: number, force = false): Promise<'compacted' | 'skipped' | 'conflict'> {
    return this.compactor.compact(ino, chunkIndex, force);
  }

  stats(): S3AdaptorStats {
    let dirty = 0;
    let pending = 0;
    for (const st of this.inodes.values()) {
      for (const c of st.dirty.values()) dirty += c.bytes;
      pending += st.pending.length;
    }
    return {
      memUsedBytes: this.memUsed,
      memBudgetBytes: this.memBudget,
      dirtyBytes: dirty,
      pendingFlushes: pending,
      inodes: this.inodes.size,
      ...this.counts,
      compactions: this.compactor.counts.compactions,
      compactionConflicts: this.compactor.counts.conflicts,
      droppedShadowedSlices: this.compactor.counts.droppedSlices,
      read: this.blocks.stats(),
      disk: this.disk?.stats() ?? null,
      s3: this.store.stats(),
    };
  }

  /** Commits all buffered data (staged blocks upload on, or after the next start) and stops timers. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await Promise.all([...this.inodes.values()].map((st) => this.settle(st)));
      await this.compactor.idle();
    } finally {
      this.closed = true;
      clearInterval(this.timer);
      this.compactor.clear();
      for (const w of this.memWaiters) w();
    }
  }
}

