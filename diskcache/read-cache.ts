// The read cache: blocks in read/ that are in S3 (fetched, or uploaded after staging), least
// recently used first. Staged blocks also sit in read/ (hard links) and are read the same
// way, but they are not in this LRU: they are never dropped. Hits and misses are counted
// here, once per lookup.
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { LRUCache } from 'lru-cache';
import { FdPool } from './fd-pool.js';
import { readExact, readFullyInto, readFullyIntoSync, unlinkQuiet, writeFileSynced } from './files.js';
import { invariant } from './limits.js';
import { TEMP_PREFIX } from './staging.js';

/** Reads up to this size are a pread on the event loop's thread (files.ts readFullyIntoSync) ... */
const SYNC_READ_MAX = 64 * 1024;
/**
 * ... unless one just took longer than this: the page cache did not hold it (dropped, or never
 * read), the loop waited for the disk, and reads in flight at once could not overlap. Small
 * reads then go through the pool for SYNC_BACKOFF_MS before the loop's thread is tried again.
 */
const SLOW_SYNC_READ_MS = 0.25;
const SYNC_BACKOFF_MS = 1_000;

export class ReadCache {
  private readonly lru = new LRUCache<string, number>({ maxSize: Number.MAX_SAFE_INTEGER, sizeCalculation: (size) => Math.max(1, size) });
  private readonly fds: FdPool;
  private cachedBytes = 0;
  private tempSeq = 0;
  readonly counts = { hits: 0, misses: 0 };
  readonly path = (key: string): string => join(this.readDir, key);

  /** Until when small reads go through the pool (a pread on the loop's thread was slow). */
  private syncReadsOffUntil = 0;
  /** preads on the loop's thread that found the disk, not the page cache. */
  slowSyncReads = 0;

  constructor(
    readonly readDir: string,
    maxOpenFiles: number,
    /** The size of a staged block (readable here too), undefined when not staged. */
    private readonly stagedSize: (key: string) => number | undefined,
    /** A pread on the loop's thread slower than this sends small reads to the pool for a while. */
    private readonly slowSyncReadMs = SLOW_SYNC_READ_MS,
  ) {
    this.fds = new FdPool(maxOpenFiles);
  }

  /** Bytes of the blocks in the LRU (staged ones not included). */
  get bytes(): number {
    return this.cachedBytes;
  }

  get count(): number {
    return this.lru.size;
  }

  private hit(): void {
    this.counts.hits++;
  }

  private miss(): void {
    this.counts.misses++;
  }

  /** Size of the block under `key` if readable here (staged or cached); touches recency. */
  private sizeOf(key: string): number | undefined {
    return this.stagedSize(key) ?? this.lru.get(key);
  }

  /** Whether a block of `size` bytes is readable here; does not touch recency. */
  has(key: string, size: number): boolean {
    return (this.stagedSize(key) ?? this.lru.peek(key)) === size;
  }

  isCached(key: string): boolean {
    return this.lru.has(key);
  }

  peekSize(key: string): number | undefined {
    return this.lru.peek(key);
  }

  /** The block from read/, or null on a miss. */
  async get(key: string): Promise<Buffer | null> {
    const size = this.sizeOf(key);
    if (size === undefined) {
      this.miss();
      return null;
    }
    try {
      const data = await readExact(this.path(key), size);
      this.hit();
      return data;
    } catch (err) {
      if (!this.vanished(key, err)) throw err;
      this.miss();
      return null;
    }
  }

  /**
   * Copies `len` bytes from `offset` of a cached block of `size` bytes into `target` at `at`;
   * false on a miss. One pread through a kept-open handle: reads served from the disk cache
   * cost what reading a local file costs, with no block-sized buffer in between.
   */
  async readInto(key: string, size: number, offset: number, len: number, target: Buffer, at: number): Promise<boolean> {
    const known = this.sizeOf(key);
    if (known !== size || offset + len > size) {
      this.miss();
      return false;
    }
    try {
      await this.fds.use(key, this.path, async (fh) => {
        if (len > SYNC_READ_MAX || Date.now() < this.syncReadsOffUntil) return readFullyInto(fh, target, at, len, offset);
        const t0 = performance.now();
        readFullyIntoSync(fh, target, at, len, offset);
        if (performance.now() - t0 > this.slowSyncReadMs) {
          this.syncReadsOffUntil = Date.now() + SYNC_BACKOFF_MS;
          this.slowSyncReads++;
        }
      });
      this.hit();
      return true;
    } catch (err) {
      if (!this.vanished(key, err)) throw err;
      this.miss();
      return false;
    }
  }

  /** A file removed (or cut short) behind our back: forget it; false for other errors. */
  private vanished(key: string, err: unknown): boolean {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ESHORT') return false;
    this.fds.drop(key);
    if (this.stagedSize(key) === undefined) this.forget(key);
    return true;
  }

  /**
   * Writes a block fetched from S3 into read/ (no fsync: it can be fetched again) and adds it.
   * Local disk errors are thrown (after cleaning up) for the caller to judge.
   */
  async insert(key: string, data: Buffer): Promise<void> {
    const tmp = join(this.readDir, `${TEMP_PREFIX}${process.pid}-r${this.tempSeq++}`);
    try {
      await writeFileSynced(tmp, data, false);
      if (this.lru.has(key) || this.stagedSize(key) !== undefined) {
        await unlinkQuiet(tmp);
        return;
      }
      await rename(tmp, this.path(key));
    } catch (err) {
      await unlinkQuiet(tmp).catch(() => {});
      throw err;
    }
    this.adopt(key, data.length);
  }

  /** Adds a block whose file is already in read/ (uploaded, or found at start). */
  adopt(key: string, size: number): void {
    invariant(!this.lru.has(key), () => `read cache block ${key} added twice`);
    this.lru.set(key, size);
    this.cachedBytes += size;
  }

  /** Removes an entry from the index and the accounting (not the file); false if absent. */
  forget(key: string): boolean {
    const size = this.lru.peek(key);
    if (size === undefined) return false;
    this.lru.delete(key);
    this.fds.drop(key);
    this.cachedBytes -= size;
    invariant(this.cachedBytes >= 0 && (this.lru.size > 0 || this.cachedBytes === 0), () => `read cache bytes ${this.cachedBytes} with ${this.lru.size} blocks`);
    return true;
  }

  /** Forgets a block and deletes its file; the bytes freed (0 when it was not cached). */
  async drop(key: string): Promise<number> {
    const size = this.lru.peek(key);
    if (size === undefined || !this.forget(key)) return 0;
    await unlinkQuiet(this.path(key));
    return size;
  }

  /** The least recently used block, if any. */
  oldest(): string | undefined {
    return this.lru.rkeys().next().value ?? undefined;
  }

  keys(): string[] {
    return [...this.lru.keys()];
  }

  /** Closes a kept handle (the file is being replaced or removed). */
  dropHandle(key: string): void {
    this.fds.drop(key);
  }

  close(): void {
    this.fds.clear();
  }
}
