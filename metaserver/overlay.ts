// A write set over the level database used while applying Raft entries: reads see earlier
// writes of the same batch, and everything (with the applied index) lands in one atomic
// level batch, so a crash either applied the whole batch or none of it.
import type { KvOp, KvRange } from '../raft/runtime/env.js';

/**
 * The part of level the metadata state machine uses (a level `Level<string, string>` in the
 * daemon, a simulated disk in the simulator). Writes without `sync` may be lost by a power
 * loss; `MetaStateMachine.flush` makes them durable.
 */
export interface MetaDb {
  get(key: string): Promise<string | undefined>;
  getMany(keys: string[]): Promise<Array<string | undefined>>;
  put(key: string, value: string, opts?: { sync?: boolean }): Promise<void>;
  batch(ops: Array<KvOp<string>>, opts?: { sync?: boolean }): Promise<void>;
  iterator(range: KvRange & { snapshot?: MetaDbSnapshot }): AsyncIterable<[string, string]>;
  keys(range: KvRange): AsyncIterable<string>;
  values(range: KvRange): AsyncIterable<string>;
  clear(range: KvRange): Promise<void>;
  snapshot(): MetaDbSnapshot;
}

export interface MetaDbSnapshot {
  close(): Promise<void>;
}

/** What an overlay reads through and commits to: the level database, or a RecordStore over it. */
export interface OverlayBase {
  get(key: string): Promise<string | undefined>;
  keys(range: { gte: string; lt: string; limit: number }): AsyncIterable<string>;
  batch(ops: Array<{ type: 'put'; key: string; value: string } | { type: 'del'; key: string }>): Promise<void>;
}

export class Overlay {
  private readonly writes = new Map<string, string | null>();

  /** A child overlay reads through its parent; `mergeInto` hands its writes up on success. */
  constructor(
    private readonly db: OverlayBase,
    private readonly parent: Overlay | null = null,
  ) {}

  async get(key: string): Promise<string | undefined> {
    if (this.writes.has(key)) return this.writes.get(key) ?? undefined;
    return this.parent ? this.parent.get(key) : this.db.get(key);
  }

  async getJson<T>(key: string): Promise<T | undefined> {
    const raw = await this.get(key);
    return raw === undefined ? undefined : (JSON.parse(raw) as T);
  }

  put(key: string, value: string): void {
    this.writes.set(key, value);
  }

  putJson(key: string, value: unknown): void {
    this.writes.set(key, JSON.stringify(value));
  }

  del(key: string): void {
    this.writes.set(key, null);
  }

  /** Keys in [gte, lt) as seen through this write set, in byte order. */
  async keys(gte: string, lt: string, limit = Infinity): Promise<string[]> {
    const found = new Set<string>();
    if (this.parent) {
      for (const key of await this.parent.keys(gte, lt, limit === Infinity ? Infinity : limit + this.writes.size)) found.add(key);
    } else {
      for await (const key of this.db.keys({ gte, lt, limit: limit === Infinity ? -1 : limit + this.writes.size })) found.add(key);
    }
    for (const [key, value] of this.writes) {
      if (key < gte || key >= lt) continue;
      if (value === null) found.delete(key);
      else found.add(key);
    }
    const sorted = [...found].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    return sorted.slice(0, limit === Infinity ? undefined : limit);
  }

  get size(): number {
    return this.writes.size;
  }

  mergeInto(parent: Overlay): void {
    for (const [key, value] of this.writes) parent.writes.set(key, value);
    this.writes.clear();
  }

  async commit(): Promise<void> {
    if (this.writes.size === 0) return;
    const ops = [...this.writes].map(([key, value]) =>
      value === null ? { type: 'del' as const, key } : { type: 'put' as const, key, value },
    );
    await this.db.batch(ops);
    this.writes.clear();
  }
}
