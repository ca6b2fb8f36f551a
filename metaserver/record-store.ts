// A copyset's committed records as the state machine and the leader's reads see them: the
// level database behind a bounded cache of recent records (present or absent), written
// through when an apply batch commits. Profiles of the metaserver bench showed the apply
// path spending most of its CPU in level gets; the records an operation touches (its
// parent directory, the name, the request id) are nearly always the ones just written.
// Rename locks are few and all kept in memory, so "is this name locked" never reads level.
//
// Only the state machine writes these keys (one copyset, one prefix), so the cache cannot go
// stale. A value read from level is cached only if no batch wrote the key while it was being
// read and no reset happened meanwhile.
//
// A batch is visible at once and written to level behind the batches before it: the apply
// that made it answers without waiting for level's thread pool (the write is not synced
// anyway; the Raft log is what makes an entry durable, and a crash replays it from there).
// Until written, its values are served from `unwritten`; range scans wait for `settled()`.
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
  /** Bumped by reset: a read overlapping one caches nothing. */
  private generation = 0;
  /** Keys being read from level (how many reads), and whether a batch wrote one meanwhile. */
  private readonly reading = new Map<string, { reads: number; written: boolean }>();
  /** Keys of batches handed to level and not yet written: the newest value, and how many such batches hold the key. */
  private readonly unwritten = new Map<string, { value: string | null; batches: number }>();
  /** The level writes, one after another in batch order. */
  private writing: Promise<void> = Promise.resolve();
  /** A failed level write: every later call fails (the state machine stops; the Raft log replays). */
  private failed: Error | null = null;
  /** Keys being read by a prefetch, and that read. */
  private readonly prefetching = new Map<string, Promise<void>>();
  /** Keys to prefetch at the end of this run (`warm`). */
  private warming = new Set<string>();
  private warmScheduled = false;
  /** Called once, when a level write fails. */
  onFailure: ((err: Error) => void) | null = null;

  constructor(
    readonly db: MetaDb,
    private readonly layout: CopysetKeys,
    private readonly maxRecords = DEFAULT_MAX_RECORDS,
  ) {}

  /** Forgets everything and reloads the locks of the given partitions (at open and after a restore). */
  async reset(partitionIds: Iterable<number>): Promise<void> {
    await this.settled();
    this.generation++;
    this.cache.clear();
    this.locks.clear();
    for (const pid of partitionIds) {
      const prefix = `${this.layout.partitionData(pid)}l/`;
      for await (const [key, value] of this.db.iterator({ gte: prefix, lt: rangeEnd(prefix) })) this.locks.set(key, value);
    }
  }

  async get(key: string): Promise<string | undefined> {
    this.check();
    if (this.layout.isLock(key)) return this.locks.get(key);
    const pending = this.unwritten.get(key);
    if (pending) return pending.value ?? undefined;
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit ?? undefined;
    const generation = this.generation;
    this.startRead(key);
    let value: string | undefined;
    let read = false;
    try {
      value = await this.db.get(key);
      read = true;
    } finally {
      if (this.endRead(key) && read && generation === this.generation) this.remember(key, value ?? null);
    }
    return value;
  }

  /**
   * Reads the keys not cached in one getMany and caches them (see apply-prefetch.ts). Keys a
   * prefetch already being read is fetching are waited for, not read twice.
   */
  async prefetch(keys: Iterable<string>): Promise<void> {
    const waits = new Set<Promise<void>>();
    const missing: string[] = [];
    for (const key of new Set(keys)) {
      if (this.cache.has(key) || this.unwritten.has(key) || this.layout.isLock(key)) continue;
      const inFlight = this.prefetching.get(key);
      // Someone else's guess failing must not fail this caller: the key stays uncached and is read later.
      if (inFlight) waits.add(inFlight.catch(() => undefined));
      else missing.push(key);
    }
    if (missing.length > 0) {
      const read = this.readMany(missing);
      for (const key of missing) this.prefetching.set(key, read);
      const done = () => {
        for (const key of missing) if (this.prefetching.get(key) === read) this.prefetching.delete(key);
      };
      void read.then(done, done);
      waits.add(read);
    }
    await Promise.all(waits);
  }

  private async readMany(missing: string[]): Promise<void> {
    const generation = this.generation;
    for (const key of missing) this.startRead(key);
    let values: Array<string | undefined> = [];
    try {
      values = await this.db.getMany(missing);
    } finally {
      missing.forEach((key, i) => {
        if (this.endRead(key) && generation === this.generation && i < values.length) this.remember(key, values[i] ?? null);
      });
    }
  }

  /**
   * Queues keys for one prefetch when the current synchronous run ends: a Batch RPC proposes
   * its 64 writes in one run, and each `getMany` costs ~0.3 ms of the main thread on a busy
   * metaserver (most of a create's CPU on the leader when each write read for itself).
   */
  warm(keys: Iterable<string>): void {
    for (const key of keys) this.warming.add(key);
    if (this.warmScheduled) return;
    this.warmScheduled = true;
    queueMicrotask(() => {
      this.warmScheduled = false;
      const batch = this.warming;
      this.warming = new Set();
      this.prefetch(batch).catch(() => undefined); // only a guess: apply reads what it misses
    });
  }

  /** The cached value of a key: a string, null when known absent, undefined when not cached. */
  cached(key: string): string | null | undefined {
    return this.cache.get(key);
  }

  async *keys(range: { gte: string; lt: string; limit: number }): AsyncIterable<string> {
    await this.settled();
    yield* this.db.keys(range);
  }

  /** Every batch so far is in level (range scans of level need this). */
  async settled(): Promise<void> {
    await this.writing;
    this.check();
  }

  /**
   * Makes the batch visible (cache, locks, `unwritten`) and queues its atomic level write
   * behind the earlier ones; resolves before level has it.
   */
  async batch(ops: WriteOp[]): Promise<void> {
    this.check();
    for (const op of ops) {
      const value = op.type === 'put' ? op.value : null;
      const pending = this.unwritten.get(op.key);
      if (pending) {
        pending.value = value;
        pending.batches++;
      } else {
        this.unwritten.set(op.key, { value, batches: 1 });
      }
      const read = this.reading.get(op.key);
      if (read) read.written = true;
      if (this.layout.isLock(op.key)) {
        if (value === null) this.locks.delete(op.key);
        else this.locks.set(op.key, value);
      } else {
        this.remember(op.key, value);
      }
    }
    this.writing = this.writing.then(async () => {
      if (this.failed) return;
      try {
        await this.db.batch(ops);
      } catch (err) {
        this.failed = err instanceof Error ? err : new Error(String(err));
        this.onFailure?.(this.failed);
        return;
      }
      for (const op of ops) {
        const pending = this.unwritten.get(op.key)!;
        if (--pending.batches === 0) this.unwritten.delete(op.key);
      }
    });
  }

  private check(): void {
    if (this.failed) throw new Error(`metadata write to level failed: ${this.failed.message}`);
  }

  private startRead(key: string): void {
    const r = this.reading.get(key);
    if (r) r.reads++;
    else this.reading.set(key, { reads: 1, written: false });
  }

  /** Whether the value just read may be cached: no batch wrote the key during the read. */
  private endRead(key: string): boolean {
    const r = this.reading.get(key)!;
    if (--r.reads === 0) this.reading.delete(key);
    return !r.written;
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
