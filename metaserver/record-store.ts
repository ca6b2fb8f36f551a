// A copyset's committed records as the state machine and the leader's reads see them: the
// level database behind a bounded cache of recent records (present or absent), written
// through when an apply batch commits. Profiles of the metaserver bench showed the apply
// path spending most of its CPU in level gets; the records an operation touches (its
// parent directory, the name, the request id) are nearly always the ones just written.
// Rename locks are few and all kept in memory, so "is this name locked" never reads level.
//
// Only the state machine writes these keys (one copyset, one prefix), so the cache cannot go
// stale; a value read from level while a batch commits is not cached (generation check).
import type { MetaDb } from './overlay.js';
import type { CopysetKeys } from './keys.js';
import { rangeEnd } from './keys.js';

/** Records kept per copyset (present or absent); older ones are dropped first. */
const DEFAULT_MAX_RECORDS = 200_000;

export type WriteOp = { type: 'put'; key: string; value: string } | { type: 'del'; key: string };

export class RecordStore {
  private readonly cache = new Map<string, string | null>();
  /** Every rename lock of the copyset: key -> txId. */
  private readonly locks = new Map<string, string>();
  private generation = 0;

  constructor(
    readonly db: MetaDb,
    private readonly layout: CopysetKeys,
    private readonly maxRecords = DEFAULT_MAX_RECORDS,
  ) {}

  /** Forgets everything and reloads the locks of the given partitions (at open and after a restore). */
  async reset(partitionIds: Iterable<number>): Promise<void> {
    this.generation++;
    this.cache.clear();
    this.locks.clear();
    for (const pid of partitionIds) {
      const prefix = `${this.layout.partitionData(pid)}l/`;
      for await (const [key, value] of this.db.iterator({ gte: prefix, lt: rangeEnd(prefix) })) this.locks.set(key, value);
    }
  }

  async get(key: string): Promise<string | undefined> {
    if (this.layout.isLock(key)) return this.locks.get(key);
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit ?? undefined;
    const generation = this.generation;
    const value = await this.db.get(key);
    if (generation === this.generation) this.remember(key, value ?? null);
    return value;
  }

  /** Reads the keys not cached in one getMany and caches them (see apply-prefetch.ts). */
  async prefetch(keys: Iterable<string>): Promise<void> {
    const missing = [...new Set(keys)].filter((k) => !this.cache.has(k) && !this.layout.isLock(k));
    if (missing.length === 0) return;
    const generation = this.generation;
    const values = await this.db.getMany(missing);
    if (generation !== this.generation) return;
    missing.forEach((key, i) => this.remember(key, values[i] ?? null));
  }

  /** The cached value of a key: a string, null when known absent, undefined when not cached. */
  cached(key: string): string | null | undefined {
    return this.cache.get(key);
  }

  keys(range: { gte: string; lt: string; limit: number }): AsyncIterable<string> {
    return this.db.keys(range);
  }

  /** Writes atomically, then updates what is cached. */
  async batch(ops: WriteOp[]): Promise<void> {
    this.generation++;
    await this.db.batch(ops);
    this.generation++;
    for (const op of ops) {
      const value = op.type === 'put' ? op.value : null;
      if (this.layout.isLock(op.key)) {
        if (value === null) this.locks.delete(op.key);
        else this.locks.set(op.key, value);
      } else {
        this.remember(op.key, value);
      }
    }
  }

  private remember(key: string, value: string | null): void {
    this.cache.delete(key);
    this.cache.set(key, value);
    if (this.cache.size > this.maxRecords) {
      // Oldest first: a Map iterates in insertion order.
      const drop = this.cache.size - this.maxRecords;
      let n = 0;
      for (const k of this.cache.keys()) {
        if (n++ >= drop) break;
        this.cache.delete(k);
      }
    }
  }
}
