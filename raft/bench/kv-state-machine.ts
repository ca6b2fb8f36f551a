// A small key-value StateMachine for tests, the bench and the raft-kv test daemon. With a
// path it keeps its data and applied index in its own level DB (one batch per apply call); with
// `shared` it keeps them under a key prefix of a DB that several groups share (as a metaserver
// does: one DB per process, not one per group).
import { Level } from 'level';
import type { LogEntryForApply, StateMachine } from '../runtime/api.js';

/** Commands: "put\0key\0value". Results: the previous value (or null). */
export function putCommand(key: string, value: string): Buffer {
  return Buffer.from(`put\u0000${key}\u0000${value}`);
}

export class KvStateMachine implements StateMachine {
  readonly data = new Map<string, string>();
  private applied = 0;
  /** How many snapshots were restored (tests check catch-up went through a snapshot). */
  restores = 0;
  private term = 0;
  private db: Level<string, string> | null = null;
  private ownsDb = false;
  private prefix = '';

  static async open(path?: string, shared?: { db: Level<string, string>; prefix: string }): Promise<KvStateMachine> {
    const sm = new KvStateMachine();
    if (shared) {
      sm.db = shared.db;
      sm.prefix = shared.prefix;
    } else if (path) {
      sm.db = new Level<string, string>(path, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
      sm.ownsDb = true;
    }
    if (sm.db) {
      await sm.db.open();
      for await (const [k, v] of sm.db.iterator(sm.range())) {
        const key = k.slice(sm.prefix.length);
        if (key === '\u0000applied') [sm.applied, sm.term] = v.split('/').map(Number) as [number, number];
        else sm.data.set(key.slice(1), v);
      }
    }
    return sm;
  }

  private range(): { gte?: string; lt?: string } {
    return this.prefix ? { gte: this.prefix, lt: `${this.prefix}\uffff` } : {};
  }

  async close(): Promise<void> {
    if (this.ownsDb) await this.db?.close();
  }

  async apply(entries: LogEntryForApply[]): Promise<unknown[]> {
    const out: unknown[] = [];
    const ops: Array<{ type: 'put'; key: string; value: string }> = [];
    for (const e of entries) {
      const [op, key, value] = e.data.toString().split('\u0000');
      if (op === 'put' && key !== undefined && value !== undefined) {
        out.push(this.data.get(key) ?? null);
        this.data.set(key, value);
        ops.push({ type: 'put', key: `${this.prefix}k${key}`, value });
      } else out.push(null);
      this.applied = e.index;
      this.term = e.term;
    }
    if (this.db) {
      ops.push({ type: 'put', key: `${this.prefix}\u0000applied`, value: `${this.applied}/${this.term}` });
      await this.db.batch(ops);
    }
    return out;
  }

  async appliedIndex(): Promise<number> {
    return this.applied;
  }

  async snapshot(): Promise<{ index: number; term: number; chunks: AsyncIterable<Buffer> }> {
    const body = Buffer.from(JSON.stringify([...this.data.entries()]));
    const index = this.applied;
    const term = this.term;
    async function* chunks() {
      for (let off = 0; off < body.length; off += 64 * 1024) yield body.subarray(off, off + 64 * 1024);
    }
    return { index, term, chunks: chunks() };
  }

  async restore(index: number, term: number, chunks: AsyncIterable<Buffer>): Promise<void> {
    const parts: Buffer[] = [];
    for await (const c of chunks) parts.push(c);
    const entries = parts.length ? (JSON.parse(Buffer.concat(parts).toString()) as Array<[string, string]>) : [];
    this.data.clear();
    for (const [k, v] of entries) this.data.set(k, v);
    this.applied = index;
    this.term = term;
    this.restores++;
    if (this.db) {
      await this.db.clear(this.range());
      const p = this.prefix;
      await this.db.batch([...entries.map(([k, v]) => ({ type: 'put' as const, key: `${p}k${k}`, value: v })), { type: 'put', key: `${p}\u0000applied`, value: `${index}/${term}` }]);
    }
  }
}
