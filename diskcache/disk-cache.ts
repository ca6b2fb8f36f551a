// The local disk cache (DESIGN.md §3): `write/` holds staged blocks not yet in S3, `read/`
// holds cached blocks. File names are the object keys. This class is the facade; the jobs
// are in their own files:
//   staging.ts    durable staging of written blocks (write/ + a link in read/)
//   uploader.ts   drains staged blocks to S3, oldest first, retrying while S3 is down
//   read-cache.ts read/: lookups (counted once each), admission of fetched blocks, the LRU
//   capacity.ts   usage against the limits, watermarks, trimming
//   recovery.ts   what a previous run left on disk
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import { silentLogger, type Logger } from '../common/log.js';
import { StatusCode, TierfsError } from '../common/status.js';
import { Capacity } from './capacity.js';
import { unlinkQuiet } from './files.js';
import { checkLimits, type DiskCacheLimits } from './limits.js';
import { DiskCacheMetrics } from './metrics.js';
import { ReadCache } from './read-cache.js';
import { recoverDirs } from './recovery.js';
import { Staging } from './staging.js';
import { Uploader, type BlockSink } from './uploader.js';

export type { BlockSink } from './uploader.js';
export type { DiskCacheLimits } from './limits.js';

export interface DiskCacheOptions {
  dir: string;
  /** Byte cap of the cache (read/ including staged blocks). */
  capacityBytes: number;
  /** File-count cap. */
  maxFiles?: number;
  store: BlockSink;
  uploadConcurrency?: number;
  /**
   * Uploads of staged blocks wait until nothing was staged for this long (default 0: at once),
   * while less than a quarter of the capacity is staged: a burst of writeback writes then has
   * the CPU and the disk to itself, and uploads right after it.
   */
  uploadDelayMs?: number;
  /** Stop staging at this fraction of the limits (default 0.9). */
  stageWatermark?: number;
  /** Start trimming read blocks at this fraction (default 0.7) ... */
  trimHighWatermark?: number;
  /** ... down to this one (default 0.35). */
  trimLowWatermark?: number;
  /** fsync staged blocks and write/ (default true; off only for throwaway caches). */
  fsync?: boolean;
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** How often disk free space is sampled and trimming checked. */
  checkIntervalMs?: number;
  /** Cached blocks kept open for reads (default 256). */
  maxOpenFiles?: number;
  registry?: Registry;
  logger?: Logger;
}

export interface DiskCacheStats {
  stagedBlocks: number;
  stagedBytes: number;
  oldestStagedAgeMs: number;
  uploadedBlocks: number;
  uploadedBytes: number;
  uploadErrors: number;
  /** Bytes per second uploaded over the last ~10 s. */
  uploadBytesPerSec: number;
  hits: number;
  misses: number;
  hitRatio: number;
  usedBytes: number;
  files: number;
  capacityBytes: number;
  maxFiles: number;
  diskFreeBytes: number;
  /** usedBytes against min(capacity, used + disk free). */
  bytesUsage: number;
  filesUsage: number;
  /** The larger of the two: what the watermarks compare against. */
  usage: number;
  stagingPaused: boolean;
  /** Uploads wait for a burst of writes to pause (uploadDelayMs). */
  uploadsHeld: boolean;
  trimmedBlocks: number;
}

/** Errors of the cache's own disk that the cache survives by not caching. */
function isLocalDiskFailure(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'EIO' || code === 'EROFS';
}

type Settings = DiskCacheLimits & { uploadDelayMs: number; fsync: boolean; retryBaseMs: number; retryMaxMs: number; checkIntervalMs: number; maxOpenFiles: number };

export class DiskCache {
  readonly writeDir: string;
  readonly readDir: string;
  private readonly log: Logger;
  private readonly metrics: DiskCacheMetrics;
  private readonly opts: Settings;
  private readonly staging: Staging;
  private readonly cache: ReadCache;
  private readonly capacity: Capacity;
  private readonly uploader: Uploader;
  private closed = false;
  private timer: NodeJS.Timeout | null = null;

  private constructor(store: BlockSink, private readonly dir: string, options: DiskCacheOptions) {
    this.opts = {
      capacityBytes: options.capacityBytes,
      maxFiles: options.maxFiles ?? 1_000_000,
      uploadConcurrency: options.uploadConcurrency ?? 4,
      uploadDelayMs: options.uploadDelayMs ?? 0,
      stageWatermark: options.stageWatermark ?? 0.9,
      trimHighWatermark: options.trimHighWatermark ?? 0.7,
      trimLowWatermark: options.trimLowWatermark ?? 0.35,
      fsync: options.fsync ?? true,
      retryBaseMs: options.retryBaseMs ?? 200,
      retryMaxMs: options.retryMaxMs ?? 5_000,
      checkIntervalMs: options.checkIntervalMs ?? 1_000,
      maxOpenFiles: options.maxOpenFiles ?? 256,
    };
    checkLimits(this.opts);
    this.writeDir = join(dir, 'write');
    this.readDir = join(dir, 'read');
    this.log = options.logger ?? silentLogger;
    this.metrics = new DiskCacheMetrics(options.registry);
    this.staging = new Staging(this.writeDir, this.readDir, () => this.opts.fsync);
    this.cache = new ReadCache(this.readDir, this.opts.maxOpenFiles, (key) => this.staging.size(key));
    this.capacity = new Capacity(dir, this.opts, this.staging, this.cache, this.metrics, this.log);
    this.uploader = new Uploader(
      store,
      this.staging,
      {
        concurrency: this.opts.uploadConcurrency,
        retryBaseMs: this.opts.retryBaseMs,
        retryMaxMs: this.opts.retryMaxMs,
        holdMs: this.opts.uploadDelayMs,
        holdBytes: this.opts.capacityBytes / 4,
      },
      (key) => this.uploadedOne(key),
      this.metrics,
      this.log,
    );
  }

  /** Opens (creating) a cache dir and queues every block left in write/ for upload again. */
  static async open(options: DiskCacheOptions): Promise<DiskCache> {
    const cache = new DiskCache(options.store, options.dir, options);
    await cache.recover();
    return cache;
  }

  private async recover(): Promise<void> {
    const { staged, cached } = await recoverDirs(this.writeDir, this.readDir);
    for (const e of cached) this.cache.adopt(e.name, e.size);
    for (const e of staged) this.uploader.enqueue(e.name, this.staging.add(e.name, e.size, e.mtimeMs));
    await this.capacity.sample();
    this.timer = setInterval(() => void this.tick(), this.opts.checkIntervalMs);
    this.timer.unref();
    if (staged.length > 0) this.log.info({ blocks: staged.length }, 'disk cache: re-queued staged blocks for upload');
    this.refreshGauges();
  }

  private async tick(): Promise<void> {
    await this.capacity.sample().catch(() => {});
    this.capacity.maybeTrim();
    this.refreshGauges();
  }

  /** An upload finished: the block leaves staging (write/ link removed) and stays as read cache. */
  private async uploadedOne(key: string): Promise<void> {
    await unlinkQuiet(join(this.writeDir, key));
    const block = this.staging.take(key);
    if (!block) return; // removed (its object deleted) while the upload finished
    this.cache.adopt(key, block.size);
    this.refreshGauges();
  }

  // ---- staging and upload ----

  /** True when a block of this size may be staged without crossing the stage watermark. */
  canStage(size: number): boolean {
    return !this.closed && this.capacity.canStage(size);
  }

  /**
   * Stages a block durably (file fsync, rename, write/ dir fsync) and queues its upload.
   * Returns false, staging nothing, when the cache is too full: the caller then writes to S3.
   */
  async stage(key: string, data: Buffer): Promise<boolean> {
    if (this.closed) throw new TierfsError(StatusCode.UNAVAILABLE, 'disk cache is closed');
    if (!this.capacity.canStage(data.length)) {
      this.capacity.maybeTrim(data.length);
      return false;
    }
    try {
      await this.staging.writeFiles(key, data, () => this.cache.forget(key));
    } catch (err) {
      if (!isLocalDiskFailure(err)) throw err;
      // The disk filled up between free-space samples, or is failing: nothing of this block
      // stays staged, and the caller writes it straight to S3.
      this.capacity.diskFull(err);
      this.refreshGauges();
      return false;
    }
    this.uploader.enqueue(key, this.staging.add(key, data.length, Date.now()), true);
    if (this.opts.fsync) await this.staging.syncWriteDir();
    this.capacity.maybeTrim();
    this.refreshGauges();
    return true;
  }

  /** Resolves once the block is in S3 (at once for a key that is not staged). */
  uploaded(key: string): Promise<void> {
    return this.staging.uploaded(key);
  }

  isStaged(key: string): boolean {
    return this.staging.has(key);
  }

  // ---- read cache ----

  /** The block from read/, or null on a miss. Counts a hit or a miss. */
  get(key: string): Promise<Buffer | null> {
    return this.cache.get(key);
  }

  /** Whether a block of `size` bytes is in the cache (staged or cached); does not touch recency. */
  has(key: string, size: number): boolean {
    return this.cache.has(key, size);
  }

  /** Whether a block of any size is held under `key` (staged or cached); does not touch recency. */
  hasKey(key: string): boolean {
    return this.staging.has(key) || this.cache.isCached(key);
  }

  /** Copies a range of a cached block into `target`; false on a miss. Counts a hit or a miss. */
  readInto(key: string, size: number, offset: number, len: number, target: Buffer, at: number): Promise<boolean> {
    return this.cache.readInto(key, size, offset, len, target, at);
  }

  /**
   * Caches a block fetched from S3 (no fsync: it can be fetched again). Skipped when full;
   * true when the block is in the cache afterwards.
   */
  async put(key: string, data: Buffer): Promise<boolean> {
    if (this.closed) return false;
    if (this.staging.has(key) || this.cache.isCached(key)) return true;
    if (!(await this.capacity.admit(data.length))) return false;
    try {
      await this.cache.insert(key, data);
    } catch (err) {
      if (!isLocalDiskFailure(err)) throw err;
      this.capacity.diskFull(err);
      this.refreshGauges();
      return false;
    }
    this.refreshGauges();
    return true;
  }

  /** Drops a cached block that is in S3; a staged block is never dropped. The bytes it freed. */
  async evict(key: string): Promise<number> {
    if (this.staging.has(key)) return 0;
    const freed = await this.cache.drop(key);
    if (freed > 0) this.refreshGauges();
    return freed;
  }

  /** Drops every cached block that is in S3 (staged blocks stay). */
  async evictAll(): Promise<{ blocks: number; bytes: number }> {
    let blocks = 0;
    let bytes = 0;
    for (const key of this.cache.keys()) {
      const freed = await this.evict(key);
      if (freed > 0) {
        blocks++;
        bytes += freed;
      }
    }
    return { blocks, bytes };
  }

  /**
   * Drops a block whose object is being deleted. A staged block is not uploaded any more;
   * an upload in flight is waited for, so a delete issued afterwards removes its object.
   */
  async remove(key: string): Promise<void> {
    const block = this.staging.take(key);
    if (block) {
      block.cancelled = true;
      await block.running?.catch(() => {});
      block.resolve();
      this.cache.dropHandle(key);
      await unlinkQuiet(join(this.writeDir, key));
      await unlinkQuiet(join(this.readDir, key));
      return;
    }
    if (this.cache.forget(key)) await unlinkQuiet(join(this.readDir, key));
  }

  // ---- limits, changeable while running ----

  limits(): DiskCacheLimits {
    const { capacityBytes, maxFiles, stageWatermark, trimHighWatermark, trimLowWatermark, uploadConcurrency } = this.opts;
    return { capacityBytes, maxFiles, stageWatermark, trimHighWatermark, trimLowWatermark, uploadConcurrency };
  }

  /**
   * Changes limits of a running cache (`tierfs cache config`). Checked as a whole before any
   * applies; a lower capacity trims read blocks at once, staged blocks are never dropped (staging
   * just pauses until uploads bring usage under the new watermark).
   */
  configure(changes: Partial<DiskCacheLimits>): DiskCacheLimits {
    const next = { ...this.limits(), ...changes };
    checkLimits(next);
    Object.assign(this.opts, next);
    this.uploader.concurrency = next.uploadConcurrency;
    this.uploader.holdBytes = next.capacityBytes / 4;
    this.log.info({ limits: next }, 'disk cache limits changed');
    this.capacity.maybeTrim();
    this.refreshGauges();
    return this.limits();
  }

  /** Test and admin hook: trim now if above the high watermark; resolves when done. */
  async trimNow(): Promise<void> {
    await this.capacity.trimNow();
    this.refreshGauges();
  }

  // ---- stats and lifecycle ----

  stats(): DiskCacheStats {
    const now = Date.now();
    const first = this.staging.oldest();
    const u = this.capacity.usage();
    const { hits, misses } = this.cache.counts;
    const lookups = hits + misses;
    return {
      stagedBlocks: this.staging.count,
      stagedBytes: this.staging.bytes,
      oldestStagedAgeMs: first ? now - first.stagedAt : 0,
      ...this.uploader.counts,
      uploadBytesPerSec: this.uploader.bytesPerSec(now),
      hits,
      misses,
      hitRatio: lookups === 0 ? 0 : hits / lookups,
      usedBytes: this.capacity.usedBytes,
      files: this.capacity.files,
      capacityBytes: this.opts.capacityBytes,
      maxFiles: this.opts.maxFiles,
      diskFreeBytes: this.capacity.diskFreeBytes,
      bytesUsage: u.bytes,
      filesUsage: u.files,
      usage: u.max,
      stagingPaused: u.max >= this.opts.stageWatermark,
      uploadsHeld: this.uploader.holdingBack,
      trimmedBlocks: this.capacity.trimmedBlocks,
    };
  }

  private refreshGauges(): void {
    const { hits, misses } = this.cache.counts;
    const lookups = hits + misses;
    this.metrics.set({
      stagedBlocks: this.staging.count,
      stagedBytes: this.staging.bytes,
      usedBytes: this.capacity.usedBytes,
      files: this.capacity.files,
      usage: this.capacity.usage().max,
      hitRatio: lookups === 0 ? 0 : hits / lookups,
    });
  }

  /** Holds uploads back (staging goes on); for maintenance windows and benchmarks. */
  pauseUploads(): void {
    this.uploader.pause();
  }

  resumeUploads(): void {
    this.uploader.resume();
  }

  /** Resolves when write/ is empty (every staged block uploaded). */
  flush(): Promise<void> {
    return this.uploader.drain();
  }

  /** Stops uploading (staged blocks stay in write/ for the next open) and releases timers. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.uploader.close();
    await this.capacity.idle();
    this.cache.close();
    for (const block of this.staging.values()) block.reject(new TierfsError(StatusCode.UNAVAILABLE, 'disk cache closed before the block was uploaded'));
  }
}
