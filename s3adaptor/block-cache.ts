// Block caches: one interface for every tier a block object can be read from before S3 —
// memory, the local disk cache, the cache group — composed in order by the BlockReader.
// Blocks are immutable (a key names one content forever), so no tier can hold a stale copy;
// a tier can only hold none.
import { LRUCache } from 'lru-cache';
import type { Logger } from '../common/log.js';
import type { DiskCache } from '../diskcache/index.js';

export interface BlockCache {
  /** Short name for stats and logs: 'memory', 'disk', 'group'. */
  readonly name: string;
  /**
   * A lookup is a network round trip (a cache node): a read of such a tier is one whole-block
   * fetch shared by every reader of the block, never one call per reader. Local tiers (memory,
   * disk) serve each reader's piece directly.
   */
  readonly remote: boolean;
  /** The whole block of `size` bytes if held here (counted as one lookup), else null. */
  get(key: string, size: number): Promise<Buffer | null>;
  /**
   * Copies [from, from + len) of the block into target at `at` if held here; false on a miss
   * (counted as one lookup). A tier may serve this without ever making a block-sized buffer.
   */
  readInto(key: string, size: number, from: number, len: number, target: Buffer, at: number): Promise<boolean>;
  /**
   * Whether the block is known to be here, without a lookup (no recency, no counting): true,
   * false, or null when the tier cannot tell without asking (a remote tier).
   */
  has(key: string, size: number): boolean | null;
  /** Offers a block fetched from below; true when held afterwards. Never throws. */
  admit(key: string, data: Buffer): Promise<boolean>;
  /** Drops a cached copy (evict); blocks a tier must keep (staged writes) stay. Bytes freed. */
  evict(key: string): Promise<number>;
  /** The object is being deleted: forget it entirely. */
  remove(key: string): Promise<void>;
  /** Drops every cached copy (evict of all); blocks and bytes freed. */
  evictAll(): Promise<{ blocks: number; bytes: number }>;
}

/** The memory tier: whole blocks in an LRU bounded in bytes. Synchronous underneath. */
export class MemoryBlockCache implements BlockCache {
  readonly name = 'memory';
  readonly remote = false;
  private readonly lru: LRUCache<string, Buffer>;

  constructor(maxBytes: number) {
    this.lru = new LRUCache<string, Buffer>({ maxSize: Math.max(1, maxBytes), sizeCalculation: (b) => Math.max(1, b.length) });
  }

  /** Synchronous lookup (touches recency): the reader's fast path. */
  peek(key: string): Buffer | undefined {
    return this.lru.get(key);
  }

  set(key: string, data: Buffer): void {
    this.lru.set(key, data);
  }

  get bytes(): number {
    return this.lru.calculatedSize;
  }

  async get(key: string, size: number): Promise<Buffer | null> {
    const b = this.lru.get(key);
    return b && b.length === size ? b : null;
  }

  async readInto(key: string, size: number, from: number, len: number, target: Buffer, at: number): Promise<boolean> {
    const b = this.lru.get(key);
    if (!b || b.length !== size) return false;
    b.copy(target, at, from, from + len);
    return true;
  }

  has(key: string, size: number): boolean {
    return this.lru.peek(key)?.length === size;
  }

  async admit(key: string, data: Buffer): Promise<boolean> {
    this.lru.set(key, data);
    return true;
  }

  async evict(key: string): Promise<number> {
    const b = this.lru.peek(key);
    this.lru.delete(key);
    return b?.length ?? 0;
  }

  async remove(key: string): Promise<void> {
    this.lru.delete(key);
  }

  async evictAll(): Promise<{ blocks: number; bytes: number }> {
    const out = { blocks: this.lru.size, bytes: this.lru.calculatedSize };
    this.lru.clear();
    return out;
  }
}

/**
 * The local disk tier over a DiskCache's read side. Blocks staged by the write path sit in
 * the same directory and are served here too; they are never evicted (only removed with
 * their object).
 */
export class DiskBlockCache implements BlockCache {
  readonly name = 'disk';
  readonly remote = false;

  constructor(
    readonly disk: DiskCache,
    private readonly log: Logger,
  ) {}

  async get(key: string, size: number): Promise<Buffer | null> {
    const b = await this.disk.get(key);
    return b && b.length === size ? b : null;
  }

  readInto(key: string, size: number, from: number, len: number, target: Buffer, at: number): Promise<boolean> {
    return this.disk.readInto(key, size, from, len, target, at);
  }

  has(key: string, size: number): boolean {
    return this.disk.has(key, size);
  }

  admit(key: string, data: Buffer): Promise<boolean> {
    return this.disk.put(key, data).catch((err: unknown) => {
      this.log.warn({ key, err: String(err) }, 'disk cache admission failed');
      return false;
    });
  }

  evict(key: string): Promise<number> {
    return this.disk.evict(key);
  }

  remove(key: string): Promise<void> {
    return this.disk.remove(key);
  }

  evictAll(): Promise<{ blocks: number; bytes: number }> {
    return this.disk.evictAll();
  }
}
