// Whole block objects for reads: memory LRU (bounded bytes) -> disk cache -> S3 GET, with
// single-flight so concurrent readers of one block share one fetch, and fire-and-forget
// prefetch for readahead. Reads copy into the caller's buffer (the FUSE reply buffer).
import { LRUCache } from 'lru-cache';
import type { Logger } from '../common/log.js';
import { StatusCode, TierfsError } from '../common/status.js';
import type { DiskCache } from '../diskcache/index.js';
import type { ObjectStore } from './object-store.js';

export interface BlockReaderStats {
  memHits: number;
  memMisses: number;
  memBytes: number;
  diskHits: number;
  s3Fetches: number;
  prefetches: number;
}

/**
 * An object of another size than its slice says is treated as missing. Seen when a GET races
 * the object's deletion (compaction): the reader then refreshes its slices and retries
 * instead of using a short block.
 */
function checkedSize(key: string, data: Buffer, size: number): Buffer {
  if (data.length !== size) throw new TierfsError(StatusCode.NOT_FOUND, `object ${key} holds ${data.length} bytes, its slice says ${size}`);
  return data;
}

export class BlockReader {
  private readonly mem: LRUCache<string, Buffer>;
  private readonly inflight = new Map<string, Promise<Buffer>>();
  private prefetching = 0;
  private readonly counts = { memHits: 0, memMisses: 0, diskHits: 0, s3Fetches: 0, prefetches: 0 };

  constructor(
    private readonly store: ObjectStore,
    private readonly disk: DiskCache | null,
    memBytes: number,
    private readonly maxPrefetch: number,
    private readonly log: Logger,
  ) {
    this.mem = new LRUCache<string, Buffer>({ maxSize: Math.max(1, memBytes), sizeCalculation: (b) => Math.max(1, b.length) });
  }

  /** The whole object; NOT_FOUND when it is gone (compaction replaced it). */
  get(key: string, size: number): Promise<Buffer> {
    const hit = this.mem.get(key);
    if (hit) {
      this.counts.memHits++;
      return Promise.resolve(hit);
    }
    this.counts.memMisses++;
    return this.load(key, size);
  }

  /**
   * Copies `len` bytes from `from` of a block into `target` at `at`. A block in memory is
   * copied from there; one in the disk cache is read straight from its file (the page cache
   * makes that as fast as reading a local file, and no block-sized buffer is made or kept);
   * otherwise the whole block is fetched once, kept in memory and admitted to the disk cache.
   */
  async readInto(key: string, size: number, from: number, len: number, target: Buffer, at: number): Promise<void> {
    const hit = this.mem.get(key);
    if (hit) {
      this.counts.memHits++;
      hit.copy(target, at, from, from + len);
      return;
    }
    if (this.disk && !this.inflight.has(key) && (await this.disk.readInto(key, size, from, len, target, at))) {
      this.counts.diskHits++;
      return;
    }
    this.counts.memMisses++;
    (await this.load(key, size)).copy(target, at, from, from + len);
  }

  /**
   * Starts loading a block into memory unless cached, loading, or too many prefetches run.
   * Blocks in the disk cache are left alone: reads take them from their files, where the
   * kernel's own readahead already works ahead of a sequential reader.
   */
  prefetch(key: string, size: number): void {
    if (this.mem.has(key) || this.inflight.has(key) || this.prefetching >= this.maxPrefetch) return;
    if (this.disk?.has(key, size)) return;
    this.prefetching++;
    this.counts.prefetches++;
    this.load(key, size)
      .catch((err: unknown) => this.log.debug({ key, err: String(err) }, 'prefetch failed'))
      .finally(() => this.prefetching--);
  }

  private load(key: string, size: number): Promise<Buffer> {
    const running = this.inflight.get(key);
    if (running) return running;
    const p = this.fetch(key, size).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  private async fetch(key: string, size: number): Promise<Buffer> {
    const local = this.disk ? await this.disk.get(key) : null;
    if (local && local.length === size) {
      this.counts.diskHits++;
      this.mem.set(key, local);
      return local;
    }
    this.counts.s3Fetches++;
    const data = checkedSize(key, await this.store.get(key), size);
    this.mem.set(key, data);
    this.disk?.put(key, data).catch((err: unknown) => this.log.warn({ key, err: String(err) }, 'disk cache admission failed'));
    return data;
  }

  /**
   * Puts a block in the disk cache unless it is there (`tierfs cache warmup`). It does not
   * go through the memory LRU, so warming a large tree does not push out what readers use.
   */
  async warm(key: string, size: number): Promise<'cached' | 'fetched' | 'full'> {
    if (!this.disk) throw new TierfsError(StatusCode.NOT_SUPPORTED, 'this mount has no disk cache to warm (--cache-size 0)');
    if (this.disk.has(key, size)) return 'cached';
    const data = this.mem.get(key) ?? checkedSize(key, await this.store.get(key), size);
    return (await this.disk.put(key, data)) ? 'fetched' : 'full';
  }

  drop(key: string): void {
    this.mem.delete(key);
  }

  /** Empties the memory cache (reads in flight finish and are not cached twice). */
  clear(): void {
    this.mem.clear();
  }

  stats(): BlockReaderStats {
    return { ...this.counts, memBytes: this.mem.calculatedSize };
  }
}
