// S3Adaptor: file ranges -> chunks -> slices -> block objects (DESIGN.md §2, §3). This class
// is the facade the gateway calls (gateway/file-data.ts lists exactly what it uses); the work
// is done by two paths over a shared table of inode states:
//   write path (write-path.ts): write buffer, memory budget, flush and commit, truncate; the
//     block objects go through block-writer.ts (stage in the disk cache or put to S3)
//   read path (read-path.ts): buffered data, flushes in flight and committed slices newest
//     first; block objects through block-reader.ts, which composes the block caches of
//     block-cache.ts in order (memory, local disk, cache group) with S3 last
// plus compaction, copy by reference, extents and cache control.
import type { Registry } from 'prom-client';
import { silentLogger, type Logger } from '../common/log.js';
import { StatusCode, TierfsError } from '../common/status.js';
import type { DiskCache, DiskCacheStats } from '../diskcache/index.js';
import { DiskBlockCache, MemoryBlockCache, type BlockCache } from './block-cache.js';
import { BlockReader, type BlockReaderStats } from './block-reader.js';
import { ChunkIdBatch } from './chunk-ids.js';
import { ChunkCompactor, ownedKeys } from './compaction.js';
import { InodeTable, type InodeState } from './inode-state.js';
import { ReadPath } from './read-path.js';
import { planCopy } from './copy-range.js';
import { FileExtents } from './extents.js';
import { AppendWriter, type AppendTimes } from './append.js';
import { CacheControl, type CacheTarget, type EvictResult, type WarmupResult } from './cache-control.js';
import type { CacheGroupStats, GroupBlockCache } from './cache-group.js';
import type { DiskCacheLimits } from '../diskcache/index.js';
import type { ObjectStore, ObjectStoreStats } from './object-store.js';
import type { AppendPlaced, ChunkIdAllocator, ChunkSlices, FileAttrs, Slice, SliceStore } from './types.js';
import { WritePath } from './write-path.js';

export interface S3AdaptorOptions {
  fsId: number;
  chunkSize: number;
  blockSize: number;
  objectStore: ObjectStore;
  sliceStore: SliceStore;
  chunkIds: ChunkIdAllocator;
  diskCache?: DiskCache | null;
  /** The cache group (cache nodes), read after memory and the disk cache, before S3. */
  cacheGroup?: GroupBlockCache | null;
  /** Also hand blocks this mount writes to S3 to the cache group (`--cache-group-write`). */
  cacheGroupWrite?: boolean;
  /** Write buffer budget (default 512 MiB); writers wait when it is used up. */
  memBudgetBytes?: number;
  /** Memory read cache (default 256 MiB). */
  readCacheBytes?: number;
  /** Fetched blocks waiting to be written to one cache tier at most (default 256 MiB); past it that tier backs off. */
  admitBacklogBytes?: number;
  /** Buffered data older than this is flushed (default 5 s). */
  flushAgeMs?: number;
  /** close/flush return once blocks are staged and slices committed (default false: wait for S3). */
  writeback?: boolean;
  /**
   * The largest readahead window of a sequential reader, in blocks (default 16): the window
   * starts at two blocks and doubles while the stream goes on, bounded by half the memory
   * read cache. 0 disables readahead.
   */
  readaheadBlocks?: number;
  /** Files up to this size are prefetched whole at their first read (default 2 blocks). */
  smallFileBytes?: number;
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
  /**
   * How long S3 may take (default 30 s): a flush that S3 has not taken by then stages its
   * blocks on the local disk (success) or fails with EIO; a read of uncached data fails with
   * EIO. `--s3-timeout` of `tierfs mount`.
   */
  s3TimeoutMs?: number;
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
  /** Blocks S3 did not take within the S3 timeout, staged on the local disk instead (uploaded when S3 is back). */
  outageStagedBlocks: number;
  compactions: number;
  compactionConflicts: number;
  /** Slices dropped because newer ones cover every byte of them (rewrites, truncates). */
  droppedShadowedSlices: number;
  /** copy_file_range calls served by reference, and the bytes they referenced (none moved). */
  copies: number;
  copiedBytes: number;
  read: BlockReaderStats;
  disk: DiskCacheStats | null;
  group: CacheGroupStats | null;
  s3: ObjectStoreStats;
}

export class S3Adaptor {
  private readonly fsId: number;
  private readonly cs: number;
  private readonly bs: number;
  private readonly store: ObjectStore;
  private readonly sliceStore: SliceStore;
  private readonly disk: DiskCache | null;
  private readonly group: GroupBlockCache | null;
  private readonly chunkIds: ChunkIdBatch;
  private readonly blocks: BlockReader;
  private readonly compactor: ChunkCompactor;
  private readonly inodes = new InodeTable();
  private readonly writes: WritePath;
  private readonly reads: ReadPath;
  private readonly extents: FileExtents;
  private readonly cacheControl: CacheControl;
  private readonly appends: AppendWriter;
  private closed = false;
  private readonly timer: NodeJS.Timeout;
  private readonly counts = { copies: 0, copiedBytes: 0 };

  constructor(opts: S3AdaptorOptions) {
    if (!(opts.blockSize > 0 && opts.chunkSize % opts.blockSize === 0)) {
      throw new TierfsError(StatusCode.INVALID_ARGUMENT, `chunkSize ${opts.chunkSize} must be a multiple of blockSize ${opts.blockSize}`);
    }
    this.fsId = opts.fsId;
    this.cs = opts.chunkSize;
    this.bs = opts.blockSize;
    this.store = opts.objectStore;
    this.sliceStore = opts.sliceStore;
    this.disk = opts.diskCache ?? null;
    this.group = opts.cacheGroup ?? null;
    const log = opts.logger ?? silentLogger;
    const flushAgeMs = opts.flushAgeMs ?? 5_000;
    const memBudgetBytes = opts.memBudgetBytes ?? 512 * 2 ** 20;
    const run = opts.flushRunBytes ?? opts.chunkSize / 4;
    this.chunkIds = new ChunkIdBatch(opts.chunkIds, opts.chunkIdBatch ?? 1000);
    const readahead = opts.readaheadBlocks ?? 16;
    const s3TimeoutMs = opts.s3TimeoutMs ?? 30_000;
    const readCacheBytes = opts.readCacheBytes ?? 256 * 2 ** 20;
    // Prefetched blocks wait in the memory tier for their reader: at most half of it.
    const readaheadMaxBytes = Math.max(this.bs, Math.floor(readCacheBytes / 2));
    const tiers: BlockCache[] = [...(this.disk ? [new DiskBlockCache(this.disk, log)] : []), ...(this.group ? [this.group] : [])];
    this.blocks = new BlockReader(
      this.store,
      new MemoryBlockCache(readCacheBytes),
      tiers,
      { maxPrefetch: Math.max(1, Math.min(2 * readahead, Math.floor(readaheadMaxBytes / this.bs))), s3TimeoutMs, admitBacklogBytes: opts.admitBacklogBytes },
      log,
    );
    this.reads = new ReadPath({
      fsId: this.fsId,
      chunkSize: this.cs,
      blockSize: this.bs,
      readaheadBlocks: readahead,
      readaheadMaxBytes,
      smallFileBytes: opts.smallFileBytes ?? 2 * this.bs,
      sliceStore: this.sliceStore,
      blocks: this.blocks,
      missingWaitMs: s3TimeoutMs,
    });
    this.extents = new FileExtents(this.cs, this.reads);
    this.cacheControl = new CacheControl({
      fsId: this.fsId,
      chunkSize: this.cs,
      blockSize: this.bs,
      reads: this.reads,
      blocks: this.blocks,
      disk: this.disk,
      group: this.group,
      store: this.store,
      concurrency: 8,
    });
    this.compactor = new ChunkCompactor({
      fsId: this.fsId,
      blockSize: this.bs,
      chunkSize: this.cs,
      store: this.store,
      sliceStore: this.sliceStore,
      blocks: this.blocks,
      threshold: opts.compactThreshold ?? 20,
      logger: log,
      settled: async (ino) => {
        const st = this.inodes.peek(ino);
        if (st) await Promise.allSettled([...st.inFlight]);
      },
      onSwapped: (ino) => this.inodes.peek(ino)?.invalidate(),
    });
    this.writes = new WritePath({
      fsId: this.fsId,
      chunkSize: this.cs,
      blockSize: this.bs,
      store: this.store,
      sliceStore: this.sliceStore,
      disk: this.disk,
      inodes: this.inodes,
      reads: this.reads,
      chunkIds: this.chunkIds,
      compactor: this.compactor,
      memBudgetBytes,
      flushAgeMs,
      writeback: opts.writeback ?? false,
      compactThreshold: opts.compactThreshold ?? 20,
      blockWriteConcurrency: opts.blockWriteConcurrency ?? 8,
      flushRunBytes: Math.min(opts.chunkSize, Math.max(1, Math.ceil(run / opts.blockSize)) * opts.blockSize),
      s3TimeoutMs,
      groupWrite: opts.cacheGroupWrite && this.group ? this.group : null,
      isClosed: () => this.closed,
      registry: opts.registry,
      log,
    });
    this.timer = setInterval(() => this.writes.tick(), Math.max(50, Math.min(1_000, flushAgeMs / 2)));
    this.appends = new AppendWriter({
      fsId: this.fsId, chunkSize: this.cs, blockSize: this.bs, sliceStore: this.sliceStore, blockWriteConcurrency: opts.blockWriteConcurrency ?? 8, logger: log,
      reserveId: async (st) => (await this.chunkIds.reserve(1, this.writes.newestChunkId(st)))[0]!,
      storeBlock: (st, key, body) => this.writes.storeBlock(st, key, body),
      committed: (st, idxs) => this.writes.maybeCompact(st, idxs),
    });
    this.timer.unref();
  }

  private inode(ino: number): InodeState {
    return this.inodes.get(ino);
  }

  private checkOpen(): void {
    if (this.closed) throw new TierfsError(StatusCode.UNAVAILABLE, 's3 adaptor is closed');
  }

  // ---- writes ----

  async write(ino: number, offset: number, data: Buffer): Promise<void> {
    this.checkOpen();
    await this.writes.write(this.inode(ino), offset, data);
  }

  async flush(ino: number): Promise<void> {
    const st = this.inodes.peek(ino);
    if (st) await this.writes.flush(st);
  }

  /**
   * flush that also commits the file's size and times with its last slices (one metaserver
   * write for both). Only when no earlier flush is still in flight, so the attributes never
   * commit ahead of data that could still fail; returns false when they were not committed
   * (nothing buffered, flushes in flight, or a slice store without the combined write).
   */
  async flushWithAttrs(ino: number, attrs: FileAttrs): Promise<boolean> {
    const st = this.inodes.peek(ino);
    if (!st) return false;
    return this.writes.flushWithAttrs(st, attrs);
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
    const st = this.inodes.peek(ino);
    if (st) await this.writes.settle(st); // staged blocks are fsynced: durable on local disk
  }

  async flushAll(): Promise<void> {
    await Promise.all([...this.inodes.keys()].map((ino) => this.flush(ino)));
  }

  async waitUploaded(): Promise<void> {
    await this.disk?.flush();
  }

  async truncate(ino: number, oldSize: number, newSize: number): Promise<void> {
    this.checkOpen();
    await this.writes.truncate(this.inode(ino), oldSize, newSize);
  }

  // ---- reads ----

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
    this.inodes.peek(ino)?.invalidate();
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
    await this.writes.settle(src);
    if (dst !== src) await this.writes.settle(dst);
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
      const [id] = await this.chunkIds.reserve(1, this.writes.newestChunkId(dst));
      for (const list of plan.added.values()) for (const s of list) s.chunkId = id!;
      await this.writes.appendSlices(dstIno, plan.added);
      dst.addCommitted(plan.added);
      this.counts.copies++;
      this.counts.copiedBytes += plan.referencedBytes;
      this.writes.maybeCompact(dst, [...plan.added.keys()]);
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
    await this.writes.mask(this.inode(ino), start, end);
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
    const st = this.inodes.peek(ino);
    return st ? this.extents.cachedAllocatedBytes(st) : null;
  }

  // ---- cache tuning (`tierfs cache warmup|evict|config`) ----

  /** Fetches the blocks of the file's first fileSize bytes into the disk cache (or the cache group). */
  warmup(ino: number, fileSize: number, target: CacheTarget = {}): Promise<WarmupResult> {
    this.checkOpen();
    return this.cacheControl.warmup(this.inode(ino), fileSize, target);
  }

  /** Drops cached blocks of one inode, or of all (null); staged blocks stay. --group: at the cache nodes. */
  evict(ino: number | null, target: CacheTarget = {}): Promise<EvictResult> {
    this.checkOpen();
    return ino === null ? this.cacheControl.evictAll() : this.cacheControl.evict(this.inode(ino), target);
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
    for (const key of keys) await this.blocks.remove(key);
    await this.store.deleteMany(keys);
    const st = this.inodes.peek(ino);
    if (st?.idle) this.inodes.delete(ino);
  }

  /** Compacts one chunk now if it is fragmented (force: whenever it has 2+ slices). */
  async compact(ino: number, chunkIndex: number, force = false): Promise<'compacted' | 'skipped' | 'conflict'> {
    return this.compactor.compact(ino, chunkIndex, force);
  }

  /** Resolves once every fetched block offered to the cache tiers is written there (or refused). */
  blocksAdmitted(): Promise<void> {
    return this.blocks.admitted();
  }

  stats(): S3AdaptorStats {
    const { dirty, pending } = this.writes.buffered();
    return {
      memUsedBytes: this.writes.memory.used,
      memBudgetBytes: this.writes.memory.budget,
      dirtyBytes: dirty,
      pendingFlushes: pending,
      inodes: this.inodes.size,
      ...this.writes.counts,
      directPuts: this.writes.directPuts,
      outageStagedBlocks: this.writes.outageStaged,
      ...this.counts,
      compactions: this.compactor.counts.compactions,
      compactionConflicts: this.compactor.counts.conflicts,
      droppedShadowedSlices: this.compactor.counts.droppedSlices,
      read: this.blocks.stats(),
      disk: this.disk?.stats() ?? null,
      group: this.group?.stats() ?? null,
      s3: this.store.stats(),
    };
  }

  /**
   * Checks the counts that must add up (tests call it after a workload): the write buffer's
   * memory against the buffers it covers; the block lookups by how they were served (that
   * ledger is also checked on every lookup).
   */
  checkInvariants(): void {
    this.writes.checkMemory();
    this.blocks.checkLedger();
  }

  /** Commits all buffered data (staged blocks upload on, or after the next start) and stops timers. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await Promise.all([...this.inodes.values()].map((st) => this.writes.settle(st)));
      await this.compactor.idle();
    } finally {
      this.closed = true;
      clearInterval(this.timer);
      this.compactor.clear();
      this.writes.memory.wakeAll();
    }
  }
}

