// The local disk cache (DESIGN.md §3): `write/` holds staged blocks not yet in S3, `read/`
// holds cached blocks. A staged block is fsynced, renamed into write/ and hard-linked into
// read/ at once; an uploader drains write/ oldest first, retrying for as long as S3 is down,
// and removes the write/ link after upload. File names are the object keys.
import { mkdir, link, rename, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import PQueue from 'p-queue';
import { LRUCache } from 'lru-cache';
import type { Registry } from 'prom-client';
import { silentLogger, type Logger } from '../common/log.js';
import { StatusCode, TierfsError } from '../common/status.js';
import { FdPool } from './fd-pool.js';
import { fsyncDir, readExact, readFullyInto, scanDir, unlinkQuiet, writeFileSynced } from './files.js';
import { DiskCacheMetrics } from './metrics.js';

/** Where uploads go: the ObjectStore of s3adaptor/ fits this shape. */
export interface BlockSink {
  /** Must not keep `body` once the promise settles: upload read-back buffers are reused. */
  put(key: string, body: Buffer): Promise<void>;
}

export interface DiskCacheOptions {
  dir: string;
  /** Byte cap of the cache (read/ including staged blocks). */
  capacityBytes: number;
  /** File-count cap. */
  maxFiles?: number;
  store: BlockSink;
  uploadConcurrency?: number;
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
  trimmedBlocks: number;
}

interface StagedBlock {
  size: number;
  stagedAt: number;
  done: Promise<void>;
  resolve(): void;
  reject(err: Error): void;
  cancelled: boolean;
  /** The upload attempt in progress, so remove() can wait for it and then delete the object. */
  running: Promise<unknown> | null;
}

/** What `tierfs cache config` shows and changes. */
export interface DiskCacheLimits {
  capacityBytes: number;
  maxFiles: number;
  stageWatermark: number;
  trimHighWatermark: number;
  trimLowWatermark: number;
  uploadConcurrency: number;
}

function checkLimits(l: DiskCacheLimits): void {
  const bad = (msg: string) => new TierfsError(StatusCode.INVALID_ARGUMENT, `disk cache: ${msg}`);
  if (!Number.isSafeInteger(l.capacityBytes) || l.capacityBytes < 1) throw bad(`capacity ${l.capacityBytes} must be a positive number of bytes`);
  if (!Number.isSafeInteger(l.maxFiles) || l.maxFiles < 1) throw bad(`file cap ${l.maxFiles} must be a positive integer`);
  if (!Number.isSafeInteger(l.uploadConcurrency) || l.uploadConcurrency < 1 || l.uploadConcurrency > 256) {
    throw bad(`upload concurrency ${l.uploadConcurrency} must be an integer in 1..256`);
  }
  const w = [l.trimLowWatermark, l.trimHighWatermark, l.stageWatermark];
  if (!w.every((x) => Number.isFinite(x) && x > 0 && x <= 1) || !(l.trimLowWatermark < l.trimHighWatermark && l.trimHighWatermark <= l.stageWatermark)) {
    throw bad(`watermarks must satisfy 0 < trimLow (${l.trimLowWatermark}) < trimHigh (${l.trimHighWatermark}) <= stage (${l.stageWatermark}) <= 1`);
  }
}

const TEMP_PREFIX = '.tmp-';

/** Errors of the cache's own disk that the cache survives by not caching. */
function isLocalDiskFailure(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'EIO' || code === 'EROFS';
}
const isTemp = (name: string) => name.startsWith(TEMP_PREFIX);

export class DiskCache {
  readonly writeDir: string;
  readonly readDir: string;
  private readonly staged = new Map<string, StagedBlock>(); // insertion order = oldest first
  /** Uploaded (or fetched) blocks in read/, least recently used first; staged ones are never here. */
  private readonly cached: LRUCache<string, number>;
  private readonly uploader: PQueue;
  private readonly fds: FdPool;
  private readonly readPath = (key: string): string => join(this.readDir, key);
  private readonly log: Logger;
  private readonly metrics: DiskCacheMetrics;
  private readonly opts: Required<Omit<DiskCacheOptions, 'registry' | 'logger' | 'store'>>;
  private usedBytes = 0;
  private files = 0;
  private diskFreeBytes = Number.MAX_SAFE_INTEGER;
  private closed = false;
  private readonly closing = new AbortController();
  private trimming: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private pendingDirSync: Promise<void> | null = null;
  private dirSyncChain: Promise<void> = Promise.resolve();
  private tempSeq = 0;
  private readonly counts = { uploadedBlocks: 0, uploadedBytes: 0, uploadErrors: 0, hits: 0, misses: 0, trimmedBlocks: 0 };
  private readonly uploadSamples: Array<{ at: number; bytes: number }> = [];
  /**
   * Read-back buffers of finished uploads, reused: a fresh 4 MiB buffer per upload costs page
   * faults and V8 mark-compacts (external memory). At most uploadConcurrency are kept.
   */
  private uploadBuffers: Buffer[] = [];

  private constructor(private readonly store: BlockSink, options: DiskCacheOptions) {
    this.opts = {
      dir: options.dir,
      capacityBytes: options.capacityBytes,
      maxFiles: options.maxFiles ?? 1_000_000,
      uploadConcurrency: options.uploadConcurrency ?? 4,
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
    this.writeDir = join(options.dir, 'write');
    this.readDir = join(options.dir, 'read');
    this.log = options.logger ?? silentLogger;
    this.uploader = new PQueue({ concurrency: this.opts.uploadConcurrency });
    this.fds = new FdPool(this.opts.maxOpenFiles);
    this.cached = new LRUCache<string, number>({ maxSize: Number.MAX_SAFE_INTEGER, sizeCalculation: (size) => Math.max(1, size) });
    this.metrics = new DiskCacheMetrics(options.registry);
  }

  /** Opens (creating) a cache dir and queues every block left in write/ for upload again. */
  static async open(options: DiskCacheOptions): Promise<DiskCache> {
    const cache = new DiskCache(options.store, options);
    await cache.recover();
    return cache;
  }

  private async recover(): Promise<void> {
    await mkdir(this.writeDir, { recursive: true });
    await mkdir(this.readDir, { recursive: true });
    const staged = (await scanDir(this.writeDir, isTemp)).sort((a, b) => a.mtimeMs - b.mtimeMs);
    const stagedNames = new Set(staged.map((e) => e.name));
    const cached = (await scanDir(this.readDir, isTemp)).filter((e) => !stagedNames.has(e.name)).sort((a, b) => a.atimeMs - b.atimeMs);
    for (const e of cached) {
      this.cached.set(e.name, e.size);
      this.usedBytes += e.size;
      this.files++;
    }
    for (const e of staged) {
      // A crash may fall between rename into write/ and the link into read/.
      await unlinkQuiet(join(this.readDir, e.name));
      await link(join(this.writeDir, e.name), join(this.readDir, e.name));
      this.usedBytes += e.size;
      this.files++;
      this.addStaged(e.name, e.size, e.mtimeMs);
    }
    await this.sampleDisk();
    this.timer = setInterval(() => void this.tick(), this.opts.checkIntervalMs);
    this.timer.unref();
    if (staged.length > 0) this.log.info({ blocks: staged.length }, 'disk cache: re-queued staged blocks for upload');
    this.refreshGauges();
  }

  private async tick(): Promise<void> {
    await this.sampleDisk().catch(() => {});
    this.maybeTrim();
    this.refreshGauges();
  }

  private async sampleDisk(): Promise<void> {
    const st = await statfs(this.opts.dir);
    this.diskFreeBytes = st.bavail * st.bsize;
  }

  // ---- usage and watermarks ----

  private usage(extraBytes = 0, extraFiles = 0): { bytes: number; files: number; max: number } {
    const used = this.usedBytes + extraBytes;
    const byteLimit = Math.max(1, Math.min(this.opts.capacityBytes, this.usedBytes + this.diskFreeBytes));
    const bytes = used / byteLimit;
    const files = (this.files + extraFiles) / this.opts.maxFiles;
    return { bytes, files, max: Math.max(bytes, files) };
  }

  /** True when a block of this size may be staged without crossing the stage watermark. */
  canStage(size: number): boolean {
    return !this.closed && this.usage(size, 1).max < this.opts.stageWatermark;
  }

  /**
   * Until the next free-space sample the disk counts as full: no staging, no read-cache
   * admission, and trimming starts, which is what frees room on a disk we share.
   */
  private diskFull(err: unknown): void {
    this.diskFreeBytes = 0;
    this.log.warn({ dir: this.opts.dir, err: (err as Error).message }, 'disk cache: the disk is full or failing; blocks go straight to S3');
    this.maybeTrim();
    this.refreshGauges();
  }

  // ---- staging and upload ----

  /**
   * Stages a block durably (file fsync, rename, write/ dir fsync) and queues its upload.
   * Returns false, staging nothing, when the cache is too full: the caller then writes to S3.
   */
  async stage(key: string, data: Buffer): Promise<boolean> {
    if (this.closed) throw new TierfsError(StatusCode.UNAVAILABLE, 'disk cache is closed');
    if (!this.canStage(data.length)) {
      this.maybeTrim();
      return false;
    }
    const tmp = join(this.writeDir, `${TEMP_PREFIX}${process.pid}-${this.tempSeq++}`);
    try {
      await writeFileSynced(tmp, data, this.opts.fsync);
      await rename(tmp, join(this.writeDir, key));
      this.forget(key); // a re-staged key replaces what read/ held
      await unlinkQuiet(join(this.readDir, key));
      await link(join(this.writeDir, key), join(this.readDir, key));
    } catch (err) {
      if (!isLocalDiskFailure(err)) throw err;
      // The disk filled up between free-space samples, or is failing: nothing of this block
      // stays staged, and the caller writes it straight to S3.
      await unlinkQuiet(tmp).catch(() => {});
      await unlinkQuiet(join(this.writeDir, key)).catch(() => {});
      this.diskFull(err);
      return false;
    }
    this.usedBytes += data.length;
    this.files++;
    this.addStaged(key, data.length, Date.now());
    if (this.opts.fsync) await this.syncWriteDir();
    this.maybeTrim();
    this.refreshGauges();
    return true;
  }

  /** Resolves once the block is in S3 (at once for a key that is not staged). */
  uploaded(key: string): Promise<void> {
    return this.staged.get(key)?.done ?? Promise.resolve();
  }

  isStaged(key: string): boolean {
    return this.staged.has(key);
  }

  /** Group commit: callers whose rename happened before a sync started share that sync. */
  private syncWriteDir(): Promise<void> {
    if (this.pendingDirSync) return this.pendingDirSync;
    const p = this.dirSyncChain.then(() => {
      this.pendingDirSync = null;
      return fsyncDir(this.writeDir);
    });
    this.pendingDirSync = p;
    this.dirSyncChain = p.catch(() => {});
    return p;
  }

  private addStaged(key: string, size: number, stagedAt: number): void {
    let resolve!: () => void;
    let reject!: (err: Error) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    done.catch(() => {}); // waiting is optional; a rejection at close must not crash the process
    const block: StagedBlock = { size, stagedAt, done, resolve, reject, cancelled: false, running: null };
    this.staged.set(key, block);
    void this.uploader.add(() => this.upload(key, block));
  }

  private async upload(key: string, block: StagedBlock): Promise<void> {
    for (let attempt = 0; !this.closed && !block.cancelled; attempt++) {
      const spare = this.uploadBuffers.pop();
      const target = spare && spare.length >= block.size ? spare : Buffer.allocUnsafe(block.size);
      try {
        const data = await readExact(join(this.writeDir, key), block.size, 0, target);
        if (block.cancelled) break;
        block.running = this.store.put(key, data);
        await block.running;
        if (block.cancelled) break;
        await unlinkQuiet(join(this.writeDir, key));
        this.staged.delete(key);
        this.cached.set(key, block.size); // stays as read cache
        this.counts.uploadedBlocks++;
        this.counts.uploadedBytes += block.size;
        this.metrics.uploaded(block.size);
        this.uploadSamples.push({ at: Date.now(), bytes: block.size });
        block.resolve();
        this.refreshGauges();
        return;
      } catch (err) {
        if (block.cancelled) break;
        this.counts.uploadErrors++;
        this.metrics.uploadErrors.inc();
        const delay = Math.min(this.opts.retryMaxMs, this.opts.retryBaseMs * 2 ** Math.min(attempt, 20));
        this.log.warn({ key, attempt, delay, err: err instanceof Error ? err.message : String(err) }, 'disk cache: upload failed, will retry');
        await this.sleep(delay);
      } finally {
        // Every read and the put are settled here (a timed-out put's socket is destroyed).
        if (target.length >= 2 ** 20 && this.uploadBuffers.length < this.opts.uploadConcurrency) this.uploadBuffers.push(target);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const signal = this.closing.signal;
      if (signal.aborted) return resolve();
      const done = () => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  // ---- read cache ----

  /** The block from read/, or null on a miss. Counts hits and misses. */
  async get(key: string): Promise<Buffer | null> {
    const size = this.staged.get(key)?.size ?? this.cached.get(key);
    if (size === undefined) {
      this.counts.misses++;
      return null;
    }
    try {
      const data = await readExact(join(this.readDir, key), size);
      this.counts.hits++;
      return data;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ESHORT') throw err;
      if (!this.staged.has(key)) this.forget(key); // removed behind our back
      this.counts.misses++;
      return null;
    }
  }

  /** Whether a block of `size` bytes is in the cache (staged or cached); does not touch recency. */
  has(key: string, size: number): boolean {
    return (this.staged.get(key)?.size ?? this.cached.peek(key)) === size;
  }

  /**
   * Copies `len` bytes from `offset` of a cached block of `size` bytes into `target` at `at`;
   * false on a miss. One pread through a kept-open handle: reads served from the disk cache
   * cost what reading a local file costs, with no block-sized buffer in between.
   */
  async readInto(key: string, size: number, offset: number, len: number, target: Buffer, at: number): Promise<boolean> {
    const known = this.staged.get(key)?.size ?? this.cached.get(key);
    if (known !== size || offset + len > size) {
      this.counts.misses++;
      return false;
    }
    try {
      await this.fds.use(key, this.readPath, (fh) => readFullyInto(fh, target, at, len, offset));
      this.counts.hits++;
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ESHORT') throw err;
      this.fds.drop(key);
      if (!this.staged.has(key)) this.forget(key); // removed behind our back
      this.counts.misses++;
      return false;
    }
  }

  /**
   * Caches a block fetched from S3 (no fsync: it can be fetched again). Skipped when full;
   * true when the block is in the cache afterwards.
   */
  async put(key: string, data: Buffer): Promise<boolean> {
    if (this.closed) return false;
    if (this.staged.has(key) || this.cached.has(key)) return true;
    if (this.usage(data.length, 1).max >= this.opts.trimHighWatermark) {
      this.maybeTrim();
      if (this.usage(data.length, 1).max >= this.opts.stageWatermark) return false;
    }
    const tmp = join(this.readDir, `${TEMP_PREFIX}${process.pid}-${this.tempSeq++}`);
    try {
      await writeFileSynced(tmp, data, false);
      if (this.cached.has(key) || this.staged.has(key)) {
        await unlinkQuiet(tmp);
        return true;
      }
      await rename(tmp, join(this.readDir, key));
    } catch (err) {
      if (!isLocalDiskFailure(err)) throw err;
      await unlinkQuiet(tmp).catch(() => {});
      this.diskFull(err);
      return false;
    }
    this.cached.set(key, data.length);
    this.usedBytes += data.length;
    this.files++;
    this.refreshGauges();
    return true;
  }

  /** Drops a cached block that is in S3; a staged block is never dropped. The bytes it freed. */
  async evict(key: string): Promise<number> {
    if (this.staged.has(key)) return 0;
    const size = this.cached.peek(key);
    if (size === undefined || !this.forget(key)) return 0;
    await unlinkQuiet(join(this.readDir, key));
    this.refreshGauges();
    return size;
  }

  /** Drops every cached block that is in S3 (staged blocks stay). */
  async evictAll(): Promise<{ blocks: number; bytes: number }> {
    let blocks = 0;
    let bytes = 0;
    for (const key of [...this.cached.keys()]) {
      const freed = await this.evict(key);
      if (freed > 0) {
        blocks++;
        bytes += freed;
      }
    }
    return { blocks, bytes };
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
    this.log.info({ limits: next }, 'disk cache limits changed');
    this.maybeTrim();
    this.refreshGauges();
    return this.limits();
  }

  /**
   * Drops a block whose object is being deleted. A staged block is not uploaded any more;
   * an upload in flight is waited for, so a delete issued afterwards removes its object.
   */
  async remove(key: string): Promise<void> {
    const block = this.staged.get(key);
    if (block) {
      block.cancelled = true;
      this.staged.delete(key);
      this.usedBytes -= block.size;
      this.files--;
      await block.running?.catch(() => {});
      block.resolve();
      this.fds.drop(key);
      await unlinkQuiet(join(this.writeDir, key));
      await unlinkQuiet(join(this.readDir, key));
      return;
    }
    if (this.forget(key)) await unlinkQuiet(join(this.readDir, key));
  }

  /** Removes a read-cache entry from the index and the accounting (not the file). */
  private forget(key: string): boolean {
    const size = this.cached.get(key);
    if (size === undefined) return false;
    this.cached.delete(key);
    this.fds.drop(key);
    this.usedBytes -= size;
    this.files--;
    return true;
  }

  // ---- trimming ----

  private maybeTrim(): void {
    if (this.trimming || this.usage().max < this.opts.trimHighWatermark) return;
    this.trimming = this.trim().finally(() => {
      this.trimming = null;
    });
  }

  /** Evicts least recently used read blocks down to the low watermark; staged blocks are not in the LRU. */
  private async trim(): Promise<void> {
    while (this.usage().max > this.opts.trimLowWatermark) {
      const key = this.cached.rkeys().next().value;
      if (key === undefined) break;
      this.forget(key);
      await unlinkQuiet(join(this.readDir, key)).catch((err: unknown) => this.log.warn({ key, err: String(err) }, 'disk cache: trim unlink failed'));
      this.counts.trimmedBlocks++;
      this.metrics.trimmed.inc();
    }
    this.refreshGauges();
  }

  /** Test and admin hook: trim now if above the high watermark; resolves when done. */
  async trimNow(): Promise<void> {
    this.maybeTrim();
    await this.trimming;
  }

  // ---- stats and lifecycle ----

  stats(): DiskCacheStats {
    const now = Date.now();
    while (this.uploadSamples.length > 0 && now - this.uploadSamples[0]!.at > 10_000) this.uploadSamples.shift();
    const windowBytes = this.uploadSamples.reduce((s, x) => s + x.bytes, 0);
    const first = this.staged.values().next().value;
    let stagedBytes = 0;
    for (const b of this.staged.values()) stagedBytes += b.size;
    const u = this.usage();
    const lookups = this.counts.hits + this.counts.misses;
    return {
      stagedBlocks: this.staged.size,
      stagedBytes,
      oldestStagedAgeMs: first ? now - first.stagedAt : 0,
      uploadedBlocks: this.counts.uploadedBlocks,
      uploadedBytes: this.counts.uploadedBytes,
      uploadErrors: this.counts.uploadErrors,
      uploadBytesPerSec: windowBytes / 10,
      hits: this.counts.hits,
      misses: this.counts.misses,
      hitRatio: lookups === 0 ? 0 : this.counts.hits / lookups,
      usedBytes: this.usedBytes,
      files: this.files,
      capacityBytes: this.opts.capacityBytes,
      maxFiles: this.opts.maxFiles,
      diskFreeBytes: this.diskFreeBytes,
      bytesUsage: u.bytes,
      filesUsage: u.files,
      usage: u.max,
      stagingPaused: u.max >= this.opts.stageWatermark,
      trimmedBlocks: this.counts.trimmedBlocks,
    };
  }

  private refreshGauges(): void {
    let stagedBytes = 0;
    for (const b of this.staged.values()) stagedBytes += b.size;
    const lookups = this.counts.hits + this.counts.misses;
    this.metrics.set({
      stagedBlocks: this.staged.size,
      stagedBytes,
      usedBytes: this.usedBytes,
      files: this.files,
      usage: this.usage().max,
      hitRatio: lookups === 0 ? 0 : this.counts.hits / lookups,
    });
  }

  /** Holds uploads back (staging goes on); for maintenance windows and benchmarks. */
  pauseUploads(): void {
    this.uploader.pause();
  }

  resumeUploads(): void {
    this.uploader.start();
  }

  /** Resolves when write/ is empty (every staged block uploaded). */
  async flush(): Promise<void> {
    this.uploader.start();
    while (this.staged.size > 0) {
      if (this.closed) throw new TierfsError(StatusCode.UNAVAILABLE, 'disk cache closed with blocks still staged');
      await Promise.allSettled([...this.staged.values()].map((b) => b.done));
    }
  }

  /** Stops uploading (staged blocks stay in write/ for the next open) and releases timers. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closing.abort();
    if (this.timer) clearInterval(this.timer);
    this.uploader.clear();
    await this.uploader.onIdle();
    await this.trimming;
    this.fds.clear();
    for (const block of this.staged.values()) block.reject(new TierfsError(StatusCode.UNAVAILABLE, 'disk cache closed before the block was uploaded'));
  }
}
