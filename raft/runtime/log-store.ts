// The process's one durable Raft store (level). Group commit: every group's entries and hard
// state produced in the same turn go into ONE synced write batch. A group's entries of one
// Ready are stored as one "run" value keyed by its first index: a run starting at i supersedes
// every entry >= i written before, so truncation deletes the later runs.
import { Level } from 'level';
import { MemoryStorage } from '../core/storage.js';
import type { Entry, HardState, SnapshotMeta } from '../core/types.js';
import { decodeEntry, decodeHardState, decodeSnapshotMeta, encodeEntry, encodeHardState, encodeSnapshotMeta } from './codec.js';

import type { KvOp, RaftKv } from './env.js';

type Op = KvOp<Buffer>;

const idx = (i: number): string => i.toString(16).padStart(12, '0');
const entryKey = (g: string, i: number): string => `e/${g}/${idx(i)}`;
const entryPrefix = (g: string): string => `e/${g}/`;

function encodeRun(entries: Entry[]): Buffer {
  const parts: Buffer[] = [Buffer.alloc(4)];
  parts[0]!.writeUInt32LE(entries.length);
  for (const e of entries) {
    const b = encodeEntry(e);
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32LE(b.length);
    parts.push(len, b);
  }
  return Buffer.concat(parts);
}

function decodeRun(b: Buffer): Entry[] {
  const n = b.readUInt32LE(0);
  const out: Entry[] = [];
  let off = 4;
  for (let i = 0; i < n; i++) {
    const len = b.readUInt32LE(off);
    out.push(decodeEntry(b.subarray(off + 4, off + 4 + len)));
    off += 4 + len;
  }
  return out;
}

export interface GroupWrite {
  groupId: string;
  entries: Entry[];
  hardState: HardState | null;
  /** Term or vote changed (a commit-index-only change needs no fsync: it can be relearned). */
  hardStateMustSync: boolean;
  snapshot: SnapshotMeta | null;
}

export class RaftLogStore {
  /** Per group: first indexes of its stored runs, ascending. */
  private readonly runs = new Map<string, number[]>();
  private queue: Array<{ ops: Op[]; sync: boolean; resolve: () => void; reject: (e: unknown) => void }> = [];
  private flushing = false;
  batches = 0;

  /** Over any ordered key-value store with level's write semantics (the simulator passes a simulated disk). */
  constructor(private readonly db: RaftKv) {}

  static async open(path: string): Promise<RaftLogStore> {
    const db = new Level<string, Buffer>(path, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
    await db.open();
    return new RaftLogStore(db);
  }

  async close(): Promise<void> {
    while (this.flushing || this.queue.length > 0) await new Promise((r) => setTimeout(r, 5));
    await this.db.close();
  }

  /** Persists writes of several groups in one synced batch; writes complete in the order given. */
  write(writes: GroupWrite[]): Promise<void> {
    const ops: Op[] = [];
    let sync = false;
    for (const w of writes) {
      const g = w.groupId;
      if (w.snapshot) {
        ops.push({ type: 'put', key: `s/${g}`, value: encodeSnapshotMeta(w.snapshot) });
        sync = true;
      }
      if (w.entries.length > 0) {
        sync = true;
        const start = w.entries[0]!.index;
        ops.push({ type: 'put', key: entryKey(g, start), value: encodeRun(w.entries) });
        const runs = this.runsOf(g);
        while (runs.length > 0 && runs[runs.length - 1]! >= start) {
          const r = runs.pop()!;
          if (r > start) ops.push({ type: 'del', key: entryKey(g, r) });
        }
        runs.push(start);
      }
      if (w.hardState) {
        ops.push({ type: 'put', key: `h/${g}`, value: encodeHardState(w.hardState) });
        if (w.hardStateMustSync) sync = true; // votes and terms must be durable before we answer
      }
    }
    // Writes complete in the order given (the host relies on it), empty ones too.
    if (ops.length === 0 && !this.flushing) return Promise.resolve();
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
        if (ops.length > 0) {
          await this.db.batch(ops, { sync: batch.some((b) => b.sync) });
          this.batches++;
        }
        for (const b of batch) b.resolve();
      } catch (e) {
        for (const b of batch) b.reject(e);
      }
    }
    this.flushing = false;
  }

  private runsOf(g: string): number[] {
    let r = this.runs.get(g);
    if (!r) this.runs.set(g, (r = []));
    return r;
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
    const first = st.firstIndex();
    const runs: number[] = [];
    let entries: Entry[] = [];
    for await (const v of this.db.values({ gte: entryPrefix(groupId), lt: `${entryPrefix(groupId)}~` })) {
      const run = decodeRun(v);
      if (run.length === 0) continue;
      runs.push(run[0]!.index);
      // A later run supersedes everything from its first index on.
      while (entries.length > 0 && entries[entries.length - 1]!.index >= run[0]!.index) entries.pop();
      if (entries.length > 0 && entries[entries.length - 1]!.index + 1 !== run[0]!.index) entries = []; // gap: older runs were compacted
      for (const e of run) entries.push(e);
    }
    this.runs.set(groupId, runs);
    // Entries must be contiguous after the snapshot; a gap would mean a torn write.
    const contiguous: Entry[] = [];
    for (const e of entries) {
      if (e.index < first) continue;
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

  /** Drops runs wholly below `meta.index` after the state machine covers them. */
  async compact(groupId: string, meta: SnapshotMeta): Promise<void> {
    const runs = this.runsOf(groupId);
    const ops: Op[] = [{ type: 'put', key: `s/${groupId}`, value: encodeSnapshotMeta(meta) }];
    // A run is obsolete when the next run starts at or before meta.index + 1.
    let keep = 0;
    while (keep + 1 < runs.length && runs[keep + 1]! <= meta.index + 1) {
      ops.push({ type: 'del', key: entryKey(groupId, runs[keep]!) });
      keep++;
    }
    runs.splice(0, keep);
    await this.db.batch(ops, { sync: true });
  }

  /**
   * Replaces a group's log by a received snapshot in one synced batch: the metadata, a
   * "restore pending" marker, and the deletion of every stored run. The snapshot data is
   * already staged on disk; `finishSnapshot` clears the marker once the state machine holds it.
   */
  async installSnapshot(groupId: string, meta: SnapshotMeta): Promise<void> {
    const ops: Op[] = [
      { type: 'put', key: `s/${groupId}`, value: encodeSnapshotMeta(meta) },
      { type: 'put', key: `p/${groupId}`, value: encodeSnapshotMeta(meta) },
    ];
    for (const r of this.runsOf(groupId)) ops.push({ type: 'del', key: entryKey(groupId, r) });
    this.runs.set(groupId, []);
    await this.db.batch(ops, { sync: true });
  }

  async pendingSnapshot(groupId: string): Promise<SnapshotMeta | null> {
    const v = await this.db.get(`p/${groupId}`);
    return v ? decodeSnapshotMeta(v) : null;
  }

  async finishSnapshot(groupId: string): Promise<void> {
    await this.db.del(`p/${groupId}`, { sync: true });
  }

  async removeGroup(groupId: string): Promise<void> {
    this.runs.delete(groupId);
    await this.db.clear({ gte: entryPrefix(groupId), lt: `${entryPrefix(groupId)}~` });
    await this.db.batch(
      [
        { type: 'del', key: `g/${groupId}` },
        { type: 'del', key: `h/${groupId}` },
        { type: 'del', key: `s/${groupId}` },
        { type: 'del', key: `p/${groupId}` },
      ],
      { sync: true },
    );
  }
}
