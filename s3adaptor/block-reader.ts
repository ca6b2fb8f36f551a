// Whole block objects for reads through the block caches in order — memory, then the tiers
// below it (local disk, cache group) — and S3 last. Single-flight: concurrent readers of one
// block share one fetch. A lookup asks each tier once: a cold block that missed the disk
// tier is fetched from the tiers below it, never looked up in the disk tier a second time.
// Fetched blocks are kept in memory and offered to the tiers above the one that served them.
// Reads copy into the caller's buffer (the FUSE reply buffer).
import type { Logger } from '../common/log.js';
import { StatusCode, TierfsError } from '../common/status.js';
import type { BlockCache, MemoryBlockCache } from './block-cache.js';
import type { ObjectStore } from './object-store.js';

export interface BlockReaderStats {
  /** Block lookups by readers (reads, compaction): memHits + memMisses. */
  lookups: number;
  memHits: number;
  memMisses: number;
  memBytes: number;
  /** Hits of the disk and group tiers (lookups and prefetches). */
  diskHits: number;
  groupHits: number;
  /** Lookups that found the block already being fetched and waited for that fetch. */
  joined: number;
  /** Lookups that failed (the error went to the reader). */
  failed: number;
  /** Whole-block GETs from S3 (reads and prefetches; not warmup). */
  s3Fetches: number;
  /** Ranged GETs: small random reads of uncached blocks (the block is not fetched whole). */
  rangedGets: number;
  prefetches: number;
  /** Prefetches running now, and blocks fetched but not yet admitted to the tiers. */
  prefetching: number;
  admitting: number;
  /** Offers not queued because a tier's backlog was full (the block is simply not cached there). */
  admissionsDropped: number;
}

export interface BlockReaderOptions {
  /** Prefetches in flight at most (bounded by memory by the caller). */
  maxPrefetch: number;
  /** A random read of at most this fraction of an uncached block uses a ranged GET (default 1/4). */
  rangedMaxFraction?: number;
  /** ... of a block of at least this size (default 256 KiB). */
  rangedMinBlock?: number;
  /** Tier admissions written at once (default 2; 8 for a remote tier); more wait, and are dropped past a backlog. */
  admitConcurrency?: number;
  /**
   * Bytes of fetched blocks waiting to be written to one tier (default 256 MiB). Past it the
   * tier is skipped (the reader has the blocks anyway) until the backlog has drained to half.
   */
  admitBacklogBytes?: number;
  /** A GET from S3 that has not answered by then fails with UNAVAILABLE (EIO) (default 30 s). */
  s3TimeoutMs?: number;
}

/**
 * An object of another size than its slice says is treated as missing. Seen when a GET races
 * the object's deletion (compaction): the reader then refreshes its slices and retries
 * instead of using a short block.
 */
export function checkedSize(key: string, data: Buffer, size: number): Buffer {
  if (data.length !== size) throw new TierfsError(StatusCode.NOT_FOUND, `object ${key} holds ${data.length} bytes, its slice says ${size}`);
  return data;
}


interface AdmissionQueue {
  jobs: Array<{ bytes: number; run: () => Promise<unknown> }>;
  bytes: number;
  running: number;
  dropped: number;
  concurrency: number;
  /** Offers dropped since the backlog last filled up (0: not overrun now). */
  overrun: number;
}

/** Where a fetch found the block: a tier's index, or S3. */
type Source = number | 's3' | 'ranged';

interface Fetch {
  data: Buffer;
  source: Source;
}

export class BlockReader {
  private readonly inflight = new Map<string, Promise<Fetch>>();
  private prefetching = 0;
  /** Lookups that missed memory and are not answered yet. */
  private active = 0;
  private readonly counts = { lookups: 0, memHits: 0, memMisses: 0, joined: 0, failed: 0, s3Fetches: 0, rangedGets: 0, prefetches: 0 };
  /** Blocks read with a ranged GET lately: a second random read of one fetches it whole. */
  private readonly rangedRecently = new Set<string>();
  /** One admission queue per tier: a slow tier (a remote cache node) never holds back another. */
  private readonly admissions: AdmissionQueue[];
  private readonly maxPrefetch: number;
  private readonly rangedMaxFraction: number;
  private readonly rangedMinBlock: number;
  private readonly admitConcurrency: number;
  private readonly admitBacklogBytes: number;
  private readonly s3TimeoutMs: number;
  /** Hits per tier (index into `tiers`). */
  private readonly hits: number[];
  /** How answered lookups that missed memory were served: per tier, and from S3. */
  private readonly served: { tiers: number[]; s3: number; ranged: number };

  constructor(
    private readonly store: ObjectStore,
    readonly memory: MemoryBlockCache,
    /** The tiers below memory, in the order they are asked. */
    readonly tiers: BlockCache[],
    opts: BlockReaderOptions,
    private readonly log: Logger,
  ) {
    this.hits = tiers.map(() => 0);
    this.served = { tiers: tiers.map(() => 0), s3: 0, ranged: 0 };
    this.admissions = tiers.map((t) => ({ jobs: [], bytes: 0, running: 0, dropped: 0, overrun: 0, concurrency: t.remote ? 8 : (opts.admitConcurrency ?? 2) }));
    this.maxPrefetch = Math.max(1, opts.maxPrefetch);
    this.rangedMaxFraction = opts.rangedMaxFraction ?? 0.25;
    this.rangedMinBlock = opts.rangedMinBlock ?? 256 * 1024;
    this.admitConcurrency = opts.admitConcurrency ?? 2;
    this.admitBacklogBytes = opts.admitBacklogBytes ?? 256 * 2 ** 20;
    this.s3TimeoutMs = opts.s3TimeoutMs ?? 30_000;
  }

  tier(name: string): BlockCache | undefined {
    return this.tiers.find((t) => t.name === name);
  }

  /** The whole object; NOT_FOUND when it is gone (compaction replaced it). */
  async get(key: string, size: number): Promise<Buffer> {
    const hit = this.lookup(key, size);
    if (hit) return hit;
    return (await this.answer(async () => {
      const { p, started } = this.load(key, size);
      const f = await p;
      return { data: f.data, how: started ? f.source : 'joined' };
    }))!;
  }

  /**
   * Copies `len` bytes from `from` of a block into `target` at `at`. A block in memory is
   * copied from there; one a local tier holds is read from it (the disk tier preads its file,
   * no block-sized buffer made or kept); otherwise the whole block is fetched once — every
   * reader and prefetch of it joins that one fetch, which asks the remote tiers and then S3 —
   * kept in memory and offered to the tiers.
   */
  async readInto(key: string, size: number, from: number, len: number, target: Buffer, at: number, random = false): Promise<void> {
    const hit = this.lookup(key, size);
    if (hit) {
      hit.copy(target, at, from, from + len);
      return;
    }
    await this.answer(async () => {
      if (!this.inflight.has(key)) {
        for (let i = 0; i < this.tiers.length; i++) {
          if (this.tiers[i]!.remote) continue;
          if (await this.tiers[i]!.readInto(key, size, from, len, target, at)) {
            this.hits[i]!++;
            return { how: i };
          }
        }
        if (random && !this.inflight.has(key) && this.rangedFits(key, size, len)) {
          // A small piece of a big uncached block, read at random: ask the remote tiers for
          // the piece, then GET just the piece.
          for (let i = 0; i < this.tiers.length; i++) {
            const tier = this.tiers[i]!;
            if (!tier.remote || tier.has(key, size) === false) continue;
            if (await tier.readInto(key, size, from, len, target, at)) {
              this.hits[i]!++;
              return { how: i };
            }
          }
          this.counts.rangedGets++;
          const piece = await this.store.get(key, from, len, { deadlineMs: this.s3TimeoutMs });
          if (piece.length !== len) throw new TierfsError(StatusCode.NOT_FOUND, `object ${key}: ranged read of ${len} bytes at ${from} got ${piece.length}`);
          piece.copy(target, at);
          return { how: 'ranged' };
        }
      }
      // Not local: one fetch per block (joined if a reader or prefetch started it meanwhile).
      const { p, started } = this.load(key, size, true);
      const f = await p;
      f.data.copy(target, at, from, from + len);
      return { how: started ? f.source : 'joined' };
    });
  }

  /** Whether a random read of `len` bytes of this uncached block should be a ranged GET (the second in a while is not). */
  private rangedFits(key: string, size: number, len: number): boolean {
    if (size < this.rangedMinBlock || len > size * this.rangedMaxFraction) return false;
    if (this.rangedRecently.delete(key)) return false; // read at random twice: worth the whole block
    this.rangedRecently.add(key);
    if (this.rangedRecently.size > 4096) this.rangedRecently.delete(this.rangedRecently.values().next().value!);
    return true;
  }

  /** Counts a lookup; the block when memory has it. */
  private lookup(key: string, size: number): Buffer | undefined {
    this.counts.lookups++;
    const hit = this.memory.peek(key);
    if (hit && hit.length === size) {
      this.counts.memHits++;
      return hit;
    }
    this.counts.memMisses++;
    return undefined;
  }

  /** Runs the answer to a lookup that missed memory and records how it was served. */
  private async answer(fn: () => Promise<{ how: Source | 'joined'; data?: Buffer }>): Promise<Buffer | undefined> {
    this.active++;
    let how: Source | 'joined' | 'failed' = 'failed';
    try {
      const r = await fn();
      how = r.how;
      return r.data;
    } finally {
      this.active--;
      if (how === 'failed') this.counts.failed++;
      else if (how === 'joined') this.counts.joined++;
      else if (how === 's3') this.served.s3++;
      else if (how === 'ranged') this.served.ranged++;
      else this.served.tiers[how]!++;
      this.checkLedger();
    }
  }

  /** Every lookup is a memory hit or miss; every miss is answered one way, or still running. */
  checkLedger(): void {
    const c = this.counts;
    const answered = this.served.tiers.reduce((a, b) => a + b, 0) + this.served.s3 + this.served.ranged + c.joined + c.failed;
    if (c.lookups !== c.memHits + c.memMisses || c.memMisses !== answered + this.active) {
      throw new TierfsError(StatusCode.INTERNAL, `invariant broken: block lookups ${c.lookups} = ${c.memHits} memory hits + ${c.memMisses} misses; misses = ${answered} answered + ${this.active} running`);
    }
  }

  /**
   * Starts loading a block into memory unless cached, loading, or too many prefetches run.
   * Blocks a local tier holds are left alone: reads take them from there (the disk tier's
   * files get the kernel's own readahead).
   */
  prefetch(key: string, size: number): boolean {
    if (this.memory.has(key, size) || this.inflight.has(key)) return true;
    if (this.tiers.some((t) => t.has(key, size) === true)) return true;
    if (this.prefetching >= this.maxPrefetch) return false;
    this.prefetching++;
    this.counts.prefetches++;
    this.load(key, size)
      .p.catch((err: unknown) => this.log.debug({ key, err: String(err) }, 'prefetch failed'))
      .finally(() => this.prefetching--);
    return true;
  }

  /**
   * The running fetch of a block, the block itself if a fetch finished while the caller was
   * asking the local tiers, or a new fetch asking the tiers (only the remote ones when
   * `remoteOnly`: the caller asked the local ones already), then S3.
   */
  private load(key: string, size: number, remoteOnly = false): { p: Promise<Fetch>; started: boolean } {
    const running = this.inflight.get(key);
    if (running) return { p: running, started: false };
    const held = this.memory.peek(key);
    if (held && held.length === size) return { p: Promise.resolve({ data: held, source: 's3' }), started: false };
    const p = this.fetch(key, size, remoteOnly).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return { p, started: true };
  }

  private async fetch(key: string, size: number, remoteOnly: boolean): Promise<Fetch> {
    for (let i = 0; i < this.tiers.length; i++) {
      const tier = this.tiers[i]!;
      if (remoteOnly && !tier.remote) continue;
      if (tier.has(key, size) === false) continue; // known absent: no lookup to count
      const data = await tier.get(key, size);
      if (data) {
        this.hits[i]!++;
        this.memory.set(key, data);
        this.offer(key, data, i);
        return { data, source: i };
      }
    }
    this.counts.s3Fetches++;
    const data = checkedSize(key, await this.store.get(key, undefined, undefined, { deadlineMs: this.s3TimeoutMs }), size);
    this.memory.set(key, data);
    this.offer(key, data, this.tiers.length);
    return { data, source: 's3' };
  }

  /**
   * Offers a fetched block to the tiers above the one that served it, after it has been
   * handed to its readers (never before: a reader never waits for a cache write), a few at
   * a time. Past a backlog of a memory's worth of blocks, offers are dropped, not queued.
   */
  private offer(key: string, data: Buffer, below: number): void {
    for (let i = 0; i < below; i++) {
      const q = this.admissions[i]!;
      if (q.overrun > 0 || q.bytes + data.length > this.admitBacklogBytes) {
        // A reader faster than the tier takes blocks: back off (skip offers, never wait) until
        // the backlog has drained to half, and say so once per episode, not once per block.
        q.dropped++;
        if (q.overrun++ === 0) this.log.warn({ tier: this.tiers[i]!.name, backlogBytes: q.bytes }, 'block cache admissions fell behind the reader; blocks are not cached there until they catch up');
        continue;
      }
      const tier = this.tiers[i]!;
      q.bytes += data.length;
      q.jobs.push({ bytes: data.length, run: () => tier.admit(key, data) });
    }
    setImmediate(() => this.pumpAdmissions());
  }

  private pumpAdmissions(): void {
    for (const q of this.admissions) {
      while (q.running < q.concurrency && q.jobs.length > 0) {
        const job = q.jobs.shift()!;
        q.running++;
        void job
          .run()
          .catch(() => {})
          .finally(() => {
            q.bytes -= job.bytes;
            q.running--;
            if (q.overrun > 0 && q.bytes <= this.admitBacklogBytes / 2) {
              this.log.info({ skipped: q.overrun }, 'block cache admissions caught up');
              q.overrun = 0;
            }
            this.pumpAdmissions();
          });
      }
    }
  }

  /** Resolves when every queued tier admission is written (tests, warmup). */
  async admitted(): Promise<void> {
    while (this.admissions.some((q) => q.running > 0 || q.jobs.length > 0)) await new Promise((r) => setTimeout(r, 5));
  }

  /**
   * Puts a block into one tier unless it is there (`tierfs cache warmup`). It does not go
   * through the memory LRU, so warming a large tree does not push out what readers use.
   */
  async warm(key: string, size: number, tierName = 'disk'): Promise<'cached' | 'fetched' | 'full'> {
    const tier = this.tier(tierName);
    if (!tier) throw new TierfsError(StatusCode.NOT_SUPPORTED, tierName === 'disk' ? 'this mount has no disk cache to warm (--cache-size 0)' : `this mount has no ${tierName} cache`);
    if (tier.has(key, size) === true) return 'cached';
    const data = this.memory.peek(key) ?? checkedSize(key, await this.store.get(key), size);
    return (await tier.admit(key, data)) ? 'fetched' : 'full';
  }

  /** The object is being deleted: every tier forgets it. */
  async remove(key: string): Promise<void> {
    await this.memory.remove(key);
    for (const t of this.tiers) await t.remove(key);
  }

  /** Drops a block from memory and from the tiers `which` selects; bytes freed below memory. */
  async evict(key: string, which: (t: BlockCache) => boolean = (t) => t.name !== 'group'): Promise<number> {
    await this.memory.evict(key);
    let freed = 0;
    for (const t of this.tiers) if (which(t)) freed += await t.evict(key);
    return freed;
  }

  /** Empties memory and the selected tiers (reads in flight finish and are not cached twice). */
  async evictAll(which: (t: BlockCache) => boolean = (t) => t.name !== 'group'): Promise<{ blocks: number; bytes: number }> {
    await this.memory.evictAll();
    const out = { blocks: 0, bytes: 0 };
    for (const t of this.tiers) {
      if (!which(t)) continue;
      const r = await t.evictAll();
      out.blocks += r.blocks;
      out.bytes += r.bytes;
    }
    return out;
  }

  stats(): BlockReaderStats {
    const hitsOf = (name: string) => {
      const i = this.tiers.findIndex((t) => t.name === name);
      return i < 0 ? 0 : this.hits[i]!;
    };
    return {
      ...this.counts,
      memBytes: this.memory.bytes,
      diskHits: hitsOf('disk'),
      groupHits: hitsOf('group'),
      prefetching: this.prefetching,
      admitting: this.admissions.reduce((n, q) => n + q.running + q.jobs.length, 0),
      admissionsDropped: this.admissions.reduce((n, q) => n + q.dropped, 0),
    };
  }
}
