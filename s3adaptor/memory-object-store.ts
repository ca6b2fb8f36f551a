// An in-memory ObjectStore (tests, benchmarks, tools): the same contract as S3ObjectStore —
// bodies copied on put (callers reuse theirs), inclusive ranged gets, idempotent deletes,
// key-ordered listing with markers — and counters in the same shape. `down` makes every
// request fail as an unreachable S3 would (UNAVAILABLE), for fault tests without a server.
import { StatusCode, TierfsError } from '../common/status.js';
import type { ListPage, ObjectInfo, ObjectStore, ObjectStoreStats, RequestOptions } from './object-store.js';

export class MemoryObjectStore implements ObjectStore {
  private readonly objects = new Map<string, { data: Buffer; at: number }>();
  private readonly counts = { requests: 0, errors: 0, retries: 0, bytesPut: 0, bytesGot: 0, gets: 0, puts: 0 };
  private inFlight = 0;
  /** While true every request fails with UNAVAILABLE. */
  down = false;
  /** Added latency per request (ms), to make races and overlaps observable. */
  latencyMs = 0;
  /** Calls per operation, for tests that count requests. */
  readonly ops = { put: 0, get: 0, rangedGet: 0, head: 0, delete: 0, list: 0 };

  /** While true requests hang (an S3 server that stopped answering) until it turns false or their deadline. */
  stalled = false;

  private async request<T>(fn: () => T, opts: RequestOptions = {}): Promise<T> {
    this.counts.requests++;
    this.inFlight++;
    const deadline = opts.deadlineMs !== undefined ? Date.now() + opts.deadlineMs : Infinity;
    try {
      if (this.latencyMs > 0) await new Promise((r) => setTimeout(r, this.latencyMs));
      while (this.stalled) {
        if (Date.now() >= deadline) throw new TierfsError(StatusCode.UNAVAILABLE, `memory object store: no answer within ${opts.deadlineMs} ms`);
        await new Promise((r) => setTimeout(r, Math.min(10, Math.max(1, deadline - Date.now()))));
      }
      if (this.down) {
        this.counts.errors++;
        throw new TierfsError(StatusCode.UNAVAILABLE, 'memory object store is down');
      }
      return fn();
    } finally {
      this.inFlight--;
    }
  }

  put(key: string, body: Buffer, opts?: RequestOptions): Promise<void> {
    this.ops.put++;
    const copy = Buffer.from(body); // the caller may reuse its buffer once this settles
    return this.request(() => {
      this.objects.set(key, { data: copy, at: Date.now() });
      this.counts.bytesPut += copy.length;
      this.counts.puts++;
    }, opts);
  }

  get(key: string, offset?: number, length?: number, opts?: RequestOptions): Promise<Buffer> {
    if (length === 0) return Promise.resolve(Buffer.alloc(0));
    if (offset !== undefined) this.ops.rangedGet++;
    else this.ops.get++;
    return this.request(() => {
      const o = this.objects.get(key);
      if (!o) throw new TierfsError(StatusCode.NOT_FOUND, `memory get ${key}: no such object`);
      const start = offset ?? 0;
      const end = length !== undefined ? Math.min(o.data.length, start + length) : o.data.length;
      const out = Buffer.from(o.data.subarray(start, end));
      this.counts.bytesGot += out.length;
      this.counts.gets++;
      return out;
    }, opts);
  }

  head(key: string): Promise<ObjectInfo | null> {
    this.ops.head++;
    return this.request(() => {
      const o = this.objects.get(key);
      return o ? { key, size: o.data.length } : null;
    });
  }

  delete(key: string): Promise<void> {
    this.ops.delete++;
    return this.request(() => {
      this.objects.delete(key);
    });
  }

  deleteMany(keys: string[]): Promise<void> {
    if (keys.length === 0) return Promise.resolve();
    return this.request(() => {
      for (const k of keys) this.objects.delete(k);
    });
  }

  list(prefix: string, marker?: string, maxKeys = 1000): Promise<ListPage> {
    this.ops.list++;
    return this.request(() => {
      const keys = [...this.objects.keys()].filter((k) => k.startsWith(prefix) && (marker === undefined || k > marker)).sort();
      const page = keys.slice(0, maxKeys);
      const objects = page.map((k) => {
        const o = this.objects.get(k)!;
        return { key: k, size: o.data.length, lastModifiedMs: o.at };
      });
      return { objects, nextMarker: keys.length > maxKeys ? page.at(-1)! : null };
    });
  }

  async ensureBucket(): Promise<void> {}

  stats(): ObjectStoreStats {
    return { ...this.counts, inFlight: this.inFlight, queued: 0 };
  }

  close(): void {}

  /** Test helpers. */
  has(key: string): boolean {
    return this.objects.has(key);
  }

  keys(): string[] {
    return [...this.objects.keys()].sort();
  }

  /** Replaces an object's bytes behind the readers' back (corruption tests). */
  corrupt(key: string, data: Buffer): void {
    this.objects.set(key, { data: Buffer.from(data), at: Date.now() });
  }
}
