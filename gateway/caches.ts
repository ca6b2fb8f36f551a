// Dentry and attribute caches of the mount. Both expire after their configured timeout, so
// changes made by another mount become visible; changes made through this mount update or
// drop the entries at once. Both are bounded (oldest entries go first).
import type { Inode } from '../metaserver/meta-client.js';

class TtlCache<K, V> {
  private readonly map = new Map<K, { value: V; expires: number }>();
  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
  ) {}

  get(key: K, now = Date.now()): V | undefined {
    const e = this.map.get(key);
    if (!e || e.expires <= now) return undefined;
    return e.value;
  }

  /**
   * The value even past its TTL (expired entries stay until evicted by size, overwritten or
   * deleted): what the gateway serves while no metaserver answers.
   */
  stale(key: K): V | undefined {
    return this.map.get(key)?.value;
  }

  /** `ttlMs` other than the cache's: entries fetched ahead of their use (a directory prefetch). */
  set(key: K, value: V, ttlMs = this.ttlMs): void {
    if (this.ttlMs <= 0 || ttlMs <= 0) return;
    this.map.delete(key);
    if (this.map.size >= this.maxEntries) {
      const oldest = this.map.keys().next();
      if (!oldest.done) this.map.delete(oldest.value);
    }
    this.map.set(key, { value, expires: Date.now() + ttlMs });
  }

  delete(key: K): void {
    this.map.delete(key);
  }

  clear(): void {
    this.map.clear();
  }

  get size(): number {
    return this.map.size;
  }
}

export interface CachedEntry {
  ino: number;
  type: number;
}

/** (parent ino, name) -> child; keyed by parent ino so renaming a directory keeps its subtree valid. */
export class DentryCache {
  private readonly cache: TtlCache<string, CachedEntry>;
  constructor(ttlMs: number, maxEntries = 100_000) {
    this.cache = new TtlCache(ttlMs, maxEntries);
  }
  private key(parent: number, name: string): string {
    return `${parent}/${name}`;
  }
  get(parent: number, name: string): CachedEntry | undefined {
    return this.cache.get(this.key(parent, name));
  }
  stale(parent: number, name: string): CachedEntry | undefined {
    return this.cache.stale(this.key(parent, name));
  }
  set(parent: number, name: string, entry: CachedEntry, ttlMs?: number): void {
    this.cache.set(this.key(parent, name), entry, ttlMs);
  }
  delete(parent: number, name: string): void {
    this.cache.delete(this.key(parent, name));
  }
  clear(): void {
    this.cache.clear();
  }
}

export interface CachedInode {
  inode: Inode;
}

/**
 * xattr names per inode, fetched on demand: `ls -l` asks two xattrs of every entry and the
 * kernel asks for security.capability before writes; a missing name needs no metaserver call.
 * Kept apart from the attributes so a GETXATTR costs no GetInode.
 */
export class XattrNameCache {
  private readonly cache: TtlCache<number, Set<string>>;
  constructor(ttlMs: number, maxEntries = 100_000) {
    this.cache = new TtlCache(ttlMs, maxEntries);
  }
  get(ino: number): Set<string> | undefined {
    return this.cache.get(ino);
  }
  set(ino: number, names: Set<string>): void {
    this.cache.set(ino, names);
  }
  delete(ino: number): void {
    this.cache.delete(ino);
  }
}

export class AttrCache {
  private readonly cache: TtlCache<number, CachedInode>;
  constructor(
    readonly ttlMs: number,
    maxEntries = 100_000,
  ) {
    this.cache = new TtlCache(ttlMs, maxEntries);
  }
  get(ino: number): CachedInode | undefined {
    return this.cache.get(ino);
  }
  stale(ino: number): CachedInode | undefined {
    return this.cache.stale(ino);
  }
  set(ino: number, entry: CachedInode, ttlMs?: number): void {
    this.cache.set(ino, entry, ttlMs);
  }
  delete(ino: number): void {
    this.cache.delete(ino);
  }
  clear(): void {
    this.cache.clear();
  }
}
