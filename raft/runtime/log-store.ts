// The process's one durable Raft store (level). Group commit: every group's entries and hard
// state produced in the same turn go into ONE synced write batch.
import { Level } from 'level';
import { MemoryStorage } from '../core/storage.js';
import type { Entry, HardState, SnapshotMeta } from '../core/types.js';
import { decodeEntry, decodeHardState, decodeSnapshotMeta, encodeEntry, encodeHardState, encodeSnapshotMeta } from './codec.js';

type Op = { type: 'put'; key: string; value: Buffer } | { type: 'del'; key: string };

const idx = (i: number): string => i.toString(16).padStart(12, '0');
const entryKey = (g: string, i: number): string => `e/${g}/${idx(i)}`;
const entryPrefix = (g: string): string => `e/${g}/`;

export interface GroupWrite {
  groupId: string;
  entries: Entry[];
  /** Last index persisted before these entries (entries past the new end are deleted). */
  prevLast: number;
  hardState: HardState | null;
  snapshot: SnapshotMeta | null;
}

export class RaftLogStore {
  private queue: Array<{ ops: Op[]; sync: boolean; resolve: () => void; reject: (e: unknown) => void }> = [];
  private flushing = false;
  batches = 0;

  private constructor(private readonly db: Level<string, Buffer>) {}

  static async open(path: string): Promise<RaftLogStore> {
    const db = new Level<string, Buffer>(path, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
    await db.open();
    return new RaftLogStore(db);
  }

  async close(): Promise<void> {
    while (this.flushing || this.queue.length > 0) await new Promise((r) => setTimeout(r, 5));
    await this.db.close();
  }

  /** Persists writes of several groups in one synced batch. */
  write(writes: GroupWrite[]): Promise<void> {
    const ops: Op[] = [];
    let sync = false;
    for (const w of writes) {
      const g = w.groupId;
      if (w.snapshot) {
        ops.push({ type: 'put', key: `s/${g}`, value: encodeSnapshotMeta(w.snapshot) });
        sync = true;
      }
      for (const e of w.entries) ops.push({ type: 'put', key: entryKey(g, e.index), value: encodeEntry(e) });
      if (w.entries.length > 0) {
        sync = true;
        const last = w.entries[w.entries.length - 1]!.index;
        for (let i = last + 1; i <= w.prevLast; i++) ops.push({ type: 'del', key: entryKey(g, i) });
      }
      if (w.hardState) {
        ops.push({ type: 'put', key: `h/${g}`, value: encodeHardState(w.hardState) });
        sync = true; // votes and terms must be durable before we answer
      }
    }
    if (ops.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.queue.push({ ops, sync, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      const ops = batch.flatMap((b) => b.ops);
      try {
        await this.db.batch(ops, { sync: batch.some((b) => b.sync) });
        this.batches++;
        for (const b of batch) b.resolve();
      } catch (e) {
        for (const b of batch) b.reject(e);
      }
    }
    this.flushing = false;
  }

  async createGroup(groupId: string, bootstrap: SnapshotMeta | null, hs: HardState): Promise<void> {
    const ops: Op[] = [{ type: 'put', key: `g/${groupId}`, value: Buffer.from('1') }];
    if (bootstrap) ops.push({ type: 'put', key: `s/${groupId}`, value: encodeSnapshotMeta(bootstrap) });
    ops.push({ type: 'put', key: `h/${groupId}`, value: encodeHardState(hs) });
    await this.db.batch(ops, { sync: true });
  }

  async hasGroup(groupId: string): Promise<boolean> {
    return (await this.db.get(`g/${groupId}`)) !== undefined;
  }

  async listGroups(): Promise<string[]> {
    const out: string[] = [];
    for await (const k of this.db.keys({ gte: 'g/', lt: 'g0' })) out.push(k.slice(2));
    return out;
  }

  /** Loads a group's persisted log into memory. */
  async load(groupId: string): Promise<MemoryStorage> {
    const st = new MemoryStorage({ voters: [], learners: [] });
    const s = await this.db.get(`s/${groupId}`);
    if (s) st.applySnapshot(decodeSnapshotMeta(s));
    const h = await this.db.get(`h/${groupId}`);
    const entries: Entry[] = [];
    const first = st.firstIndex();
    for await (const v of this.db.values({ gte: entryKey(groupId, first), lt: `${entryPrefix(groupId)}~` })) entries.push(decodeEntry(v));
    // Entries must be contiguous after the snapshot; a gap would mean a torn write.
    const contiguous: Entry[] = [];
    for (const e of entries) {
      if (e.index !== first + contiguous.length) break;
      contiguous.push(e);
    }
    st.append(contiguous);
    if (h) {
      const hs = decodeHardState(h);
      st.setHardState({ ...hs, commit: Math.min(hs.commit, st.lastIndex()) });
    }
    return st;
  }

  /** Drops entries up to `index` after the state machine covers them. */
  async compact(groupId: string, meta: SnapshotMeta): Promise<void> {
    await this.db.put(`s/${groupId}`, encodeSnapshotMeta(meta), { sync: true });
    await this.db.clear({ gte: entryPrefix(groupId), lte: entryKey(groupId, meta.index) });
  }

  /** Replaces a group's log by a snapshot (entries are dropped first, then the metadata is written). */
  async resetToSnapshot(groupId: string, meta: SnapshotMeta): Promise<void> {
    await this.db.clear({ gte: entryPrefix(groupId), lt: `${entryPrefix(groupId)}~` });
    await this.db.put(`s/${groupId}`, encodeSnapshotMeta(meta), { sync: true });
  }

  async removeGroup(groupId: string): Promise<void> {
    await this.db.clear({ gte: entryPrefix(groupId), lt: `${entryPrefix(groupId)}~` });
    await this.db.batch(
      [
        { type: 'del', key: `g/${groupId}` },
        { type: 'del', key: `h/${groupId}` },
        { type: 'del', key: `s/${groupId}` },
      ],
      { sync: true },
    );
  }
}
