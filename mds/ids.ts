// Id allocation on top of the store's compare-and-swap. Counters hold the next free id;
// a reservation moves the counter forward first, so an id handed out is never handed out
// again — also after a failover or restart (ids of a reserved-but-unused bundle are skipped).
import type { KvStore } from './kv.js';
import { StatusCode, TierfsError } from '../common/status.js';

/** Reserves `count` ids from the counter at `key` (first id 1); returns the first. */
export async function reserveIds(kv: KvStore, key: string, count: number): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const current = await kv.get(key);
    const next = current === undefined ? 1 : Number(current);
    if (!Number.isSafeInteger(next) || next < 1) throw new TierfsError(StatusCode.INTERNAL, `counter ${key} holds ${current}`);
    if (await kv.cas(key, current, String(next + count))) return next;
  }
  throw new TierfsError(StatusCode.UNAVAILABLE, `counter ${key}: too many concurrent updates`);
}

/** Hands out ids from bundles reserved in the store, so most requests cost no store write. */
export class BundledIdAllocator {
  private next = 0;
  private end = 0;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly kv: KvStore,
    private readonly key: string,
    private readonly bundle: number,
  ) {}

  /** Returns `count` consecutive ids [start, start + count). */
  allocate(count: number): Promise<number> {
    const run = this.chain.then(async () => {
      if (this.end - this.next < count) {
        const size = Math.max(this.bundle, count);
        const start = await reserveIds(this.kv, this.key, size);
        // A fresh bundle replaces the rest of the old one: ids stay unique, a few are skipped.
        this.next = start;
        this.end = start + size;
      }
      const start = this.next;
      this.next += count;
      return start;
    });
    this.chain = run.catch(() => undefined);
    return run;
  }
}
