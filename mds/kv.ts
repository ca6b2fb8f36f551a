// The MDS's store behind one small interface: etcd for a cluster, an embedded `level`
// database for a single machine. Writes through an etcd store can be fenced on a key
// (the leader's election key), so a deposed leader cannot overwrite its successor's data.
import { Level } from 'level';
import { Etcd3 } from 'etcd3';
import { StatusCode, TierfsError } from '../common/status.js';

export interface KvEntry {
  key: string;
  value: string;
}

export interface KvStore {
  get(key: string): Promise<string | undefined>;
  put(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
  /** Every entry whose key starts with `prefix`, in key order. */
  range(prefix: string): Promise<KvEntry[]>;
  /**
   * Sets `key` to `next` (deletes it when `next` is undefined) only if its current value is
   * `expected` (absent when `expected` is undefined). Returns whether it was applied.
   */
  cas(key: string, expected: string | undefined, next: string | undefined): Promise<boolean>;
  close(): Promise<void>;
}

/** Embedded store: one process owns the database, so a promise chain serializes compare-and-swap. */
export class LevelKv implements KvStore {
  private readonly db: Level<string, string>;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(dir: string) {
    this.db = new Level<string, string>(dir, { valueEncoding: 'utf8' });
  }

  async open(): Promise<this> {
    await this.db.open();
    return this;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.db.get(key)) ?? undefined;
  }

  put(key: string, value: string): Promise<void> {
    return this.serial(() => this.db.put(key, value));
  }

  delete(key: string): Promise<void> {
    return this.serial(() => this.db.del(key));
  }

  async range(prefix: string): Promise<KvEntry[]> {
    const out: KvEntry[] = [];
    for await (const [key, value] of this.db.iterator({ gte: prefix, lt: `${prefix}\uffff` })) out.push({ key, value });
    return out;
  }

  cas(key: string, expected: string | undefined, next: string | undefined): Promise<boolean> {
    return this.serial(async () => {
      const current = (await this.db.get(key)) ?? undefined;
      if (current !== expected) return false;
      if (next === undefined) await this.db.del(key);
      else await this.db.put(key, next);
      return true;
    });
  }

  close(): Promise<void> {
    return this.db.close();
  }
}

/** etcd store: keys live under `prefix`; writes optionally fenced on an absolute key existing. */
export class EtcdKv implements KvStore {
  /**
   * `fenceKey`: an absolute etcd key (the leader's election key); when set, every write
   * succeeds only while it exists, else fails with NOT_LEADER.
   */
  constructor(
    readonly client: Etcd3,
    private readonly prefix: string,
    private readonly fenceKey: string | null = null,
  ) {}

  /** The same store, with writes fenced on `key`. Each leadership term gets its own view. */
  fenced(key: string): EtcdKv {
    return new EtcdKv(this.client, this.prefix, key);
  }

  private full(key: string): string {
    return this.prefix + key;
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.client.get(this.full(key)).string()) ?? undefined;
  }

  private async fencedCommit(ops: (tx: ReturnType<Etcd3['if']>) => ReturnType<Etcd3['if']>, extra?: [string, 'Create' | 'Value', '==', string | number]): Promise<boolean> {
    const fence = this.fenceKey;
    if (!fence && !extra) throw new Error('unreachable: unfenced commit without comparison');
    let tx = fence ? this.client.if(fence, 'Create', '>', 0) : this.client.if(extra![0], extra![1], extra![2], extra![3]);
    if (fence && extra) tx = tx.and(extra[0], extra[1], extra[2], extra[3]);
    const res = await ops(tx).commit();
    if (res.succeeded) return true;
    if (fence && !(await this.client.get(fence).exists())) {
      throw new TierfsError(StatusCode.NOT_LEADER, 'this MDS lost its leadership (election key gone); write refused');
    }
    return false;
  }

  async put(key: string, value: string): Promise<void> {
    if (!this.fenceKey) {
      await this.client.put(this.full(key)).value(value);
      return;
    }
    await this.fencedCommit((tx) => tx.then(this.client.put(this.full(key)).value(value)));
  }

  async delete(key: string): Promise<void> {
    if (!this.fenceKey) {
      await this.client.delete().key(this.full(key));
      return;
    }
    await this.fencedCommit((tx) => tx.then(this.client.delete().key(this.full(key))));
  }

  async range(prefix: string): Promise<KvEntry[]> {
    const all = await this.client.getAll().prefix(this.full(prefix)).sort('Key', 'Ascend').strings();
    return Object.entries(all)
      .map(([key, value]) => ({ key: key.slice(this.prefix.length), value }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  cas(key: string, expected: string | undefined, next: string | undefined): Promise<boolean> {
    const k = this.full(key);
    const cmp: [string, 'Create' | 'Value', '==', string | number] = expected === undefined ? [k, 'Create', '==', 0] : [k, 'Value', '==', expected];
    const op = next === undefined ? this.client.delete().key(k) : this.client.put(k).value(next);
    return this.fencedCommit((tx) => tx.then(op), cmp);
  }

  /** The client belongs to the caller, who closes it. */
  async close(): Promise<void> {}
}
