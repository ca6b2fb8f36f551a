// A simulated disk: an ordered key-value store with level's write semantics, opened once
// per incarnation of a simulated server. A write without `sync` is visible at once but
// only durable once a later synced write (or none: a crash) comes; a crash keeps the
// durable state plus a random prefix of the unsynced writes (a write-ahead log torn at a
// record boundary). Writes take simulated time, can be slowed down, and can fail (EIO).
import type { KvOp, KvRange } from '../runtime/env.js';
import type { Prng } from './prng.js';
import type { SimWorld } from './world.js';

export interface DiskFaults {
  /** Write latency in simulated ms: uniform in [min, max]. */
  minWriteMs: number;
  maxWriteMs: number;
  /** Chance that a write is slow (x10..x50 latency). */
  slowRate: number;
  /** While true every write fails with EIO. */
  failing: boolean;
  /** A lying disk (for the simulator's own tests): `sync` makes nothing durable. */
  ignoreSync?: boolean;
}

export class DiskError extends Error {
  readonly code = 'EIO';
}

interface Snap<V> {
  readonly data: Map<string, V>;
  close(): Promise<void>;
}

const inRange = (k: string, r: KvRange): boolean =>
  (r.gte === undefined || k >= r.gte) && (r.gt === undefined || k > r.gt) && (r.lt === undefined || k < r.lt) && (r.lte === undefined || k <= r.lte);

export class SimDisk<V> {
  /** What survives any crash. */
  private durable = new Map<string, V>();
  /** What the running server sees: durable plus unsynced writes. */
  private visible = new Map<string, V>();
  private unsynced: Array<Array<KvOp<V>>> = [];
  /** Completion time of the last queued write: writes finish in order. */
  private lastDone = 0;
  private handle: SimDiskHandle<V> | null = null;
  writes = 0;
  failedWrites = 0;
  lostWrites = 0;

  constructor(
    private readonly world: SimWorld,
    private readonly rng: Prng,
    public faults: DiskFaults,
  ) {}

  /** Opens the disk for a new incarnation of its server (the previous handle is dead). */
  open(): SimDiskHandle<V> {
    this.handle?.kill();
    this.handle = new SimDiskHandle(this);
    return this.handle;
  }

  /** The server died: memory is gone and only durable data plus a prefix of the rest remain. */
  crash(): void {
    this.handle?.kill();
    this.handle = null;
    const keep = this.rng.int(this.unsynced.length + 1);
    for (let i = 0; i < keep; i++) this.applyTo(this.durable, this.unsynced[i]!);
    this.lostWrites += this.unsynced.length - keep;
    this.unsynced = [];
    this.visible = new Map(this.durable);
  }

  private applyTo(m: Map<string, V>, ops: Array<KvOp<V>>): void {
    for (const op of ops) {
      if (op.type === 'put') m.set(op.key, op.value);
      else m.delete(op.key);
    }
  }

  /** @internal the handle's write path */
  write(h: SimDiskHandle<V>, ops: Array<KvOp<V>>, sync: boolean): Promise<void> {
    const f = this.faults;
    let ms = f.minWriteMs + this.rng.next() * (f.maxWriteMs - f.minWriteMs);
    if (this.rng.chance(f.slowRate)) ms *= 10 + this.rng.int(40);
    const done = Math.max(this.lastDone, this.world.now + ms);
    this.lastDone = done;
    const fail = f.failing;
    return new Promise((resolve, reject) => {
      this.world.at(done, () => {
        if (!h.alive) return; // the server crashed first: its promise never settles
        this.writes++;
        if (fail) {
          this.failedWrites++;
          reject(new DiskError('simulated disk write failed (EIO)'));
          return;
        }
        const copy = ops.map((o) => ({ ...o }));
        this.applyTo(this.visible, copy);
        this.unsynced.push(copy);
        if (sync && !f.ignoreSync) {
          for (const b of this.unsynced) this.applyTo(this.durable, b);
          this.unsynced = [];
        }
        resolve();
      });
    });
  }

  /** @internal */
  get view(): Map<string, V> {
    return this.visible;
  }

  /** Everything the server sees, sorted (for comparing replicas). */
  dump(prefix = ''): Array<[string, V]> {
    return [...this.visible].filter(([k]) => k.startsWith(prefix)).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }
}

/** One incarnation's view of a SimDisk; after a crash every call on it hangs forever. */
export class SimDiskHandle<V> {
  alive = true;

  constructor(private readonly disk: SimDisk<V>) {}

  kill(): void {
    this.alive = false;
  }

  private dead<T>(): Promise<T> {
    return new Promise<T>(() => {});
  }

  async get(key: string): Promise<V | undefined> {
    if (!this.alive) return this.dead();
    return this.disk.view.get(key);
  }

  async getMany(keys: string[]): Promise<Array<V | undefined>> {
    if (!this.alive) return this.dead();
    return keys.map((k) => this.disk.view.get(k));
  }

  put(key: string, value: V, opts?: { sync?: boolean }): Promise<void> {
    return this.batch([{ type: 'put', key, value }], opts);
  }

  del(key: string, opts?: { sync?: boolean }): Promise<void> {
    return this.batch([{ type: 'del', key }], opts);
  }

  batch(ops: Array<KvOp<V>>, opts?: { sync?: boolean }): Promise<void> {
    if (!this.alive) return this.dead();
    return this.disk.write(this, ops, opts?.sync ?? false);
  }

  private range(r: KvRange & { limit?: number; snapshot?: unknown }): Array<[string, V]> {
    const src = (r.snapshot as Snap<V> | undefined)?.data ?? this.disk.view;
    const out: Array<[string, V]> = [];
    for (const e of src) if (inRange(e[0], r)) out.push(e);
    out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return r.limit !== undefined && r.limit >= 0 ? out.slice(0, r.limit) : out;
  }

  async *iterator(r: KvRange & { snapshot?: unknown }): AsyncGenerator<[string, V]> {
    if (!this.alive) return this.dead();
    for (const e of this.range(r)) yield e;
  }

  async *keys(r: KvRange): AsyncGenerator<string> {
    if (!this.alive) return this.dead();
    for (const [k] of this.range(r)) yield k;
  }

  async *values(r: KvRange): AsyncGenerator<V> {
    if (!this.alive) return this.dead();
    for (const [, v] of this.range(r)) yield v;
  }

  clear(r: KvRange): Promise<void> {
    if (!this.alive) return this.dead();
    return this.batch(this.range(r).map(([key]) => ({ type: 'del', key })));
  }

  snapshot(): Snap<V> {
    return { data: new Map(this.disk.view), close: async () => {} };
  }

  async close(): Promise<void> {}
}
