// The state machine of one chunk copyset: chunk files in the copyset's directory, changed
// only by applying committed log entries (write, delete). Every entry is a physical redo
// (these bytes at this offset; this chunk gone), so applying an entry twice gives the same
// result: the applied index is persisted lazily (flush(), called by raft/ before it
// compacts the log and after a snapshot restore), and after a crash the entries since then
// are simply applied again. For the same reason a snapshot may be fuzzy: the chunk files
// are read while later entries are applied, and the receiver replays the entries after the
// snapshot's index over them (Curve's chunk snapshots work the same way).
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { open, rename, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { StatusCode, TierfsError } from '../common/status.js';
import type { LogEntryForApply, StateMachine } from '../raft/index.js';
import type { ChunkFilePool } from './chunk-pool.js';

export const BLOCK = 4096;
const OP_WRITE = 1;
const OP_DELETE = 2;
/** Several writes in one entry (the block client's batches): op u8, count u32, then frames. */
const OP_WRITEV = 3;
const HEADER = 11; // op u8, chunk id u48, offset u32
/** Snapshot frames carry 1 MiB pieces; all-zero pieces are skipped. */
const PIECE = 1 << 20;
const FRAME = 14; // chunk id u48, offset u32, length u32
/** Open chunk files kept per copyset (reads and applies reuse them; see withHandle). */
const MAX_OPEN_CHUNKS = 256;

export function encodeWrite(chunkId: number, offset: number, data: Buffer): Buffer {
  const b = Buffer.allocUnsafe(HEADER + data.length);
  b.writeUInt8(OP_WRITE, 0);
  b.writeUIntBE(chunkId, 1, 6);
  b.writeUInt32BE(offset, 7);
  data.copy(b, HEADER);
  return b;
}

/** One piece of a batched write: 4 KiB-aligned bytes inside a chunk. */
export interface ChunkWrite {
  chunkId: number;
  offset: number;
  data: Buffer;
}

export function encodeWritev(writes: ChunkWrite[]): Buffer {
  const head = Buffer.allocUnsafe(5);
  head.writeUInt8(OP_WRITEV, 0);
  head.writeUInt32BE(writes.length, 1);
  const parts: Buffer[] = [head];
  for (const w of writes) parts.push(frameHeader(w.chunkId, w.offset, w.data.length), w.data);
  return Buffer.concat(parts);
}

export function encodeDelete(chunkId: number): Buffer {
  const b = Buffer.alloc(HEADER);
  b.writeUInt8(OP_DELETE, 0);
  b.writeUIntBE(chunkId, 1, 6);
  return b;
}

const isZero = (b: Buffer): boolean => {
  for (let i = 0; i < b.length; i += 8) if (b.readBigUInt64LE(i) !== 0n) return false;
  return true;
};

export class ChunkStateMachine implements StateMachine {
  private applied = 0;
  private appliedTerm = 0;
  private readonly handles = new Map<number, FileHandle>();
  private readonly dirty = new Set<number>();
  private readonly opening = new Map<number, Promise<FileHandle | null>>();
  /** Handles in use by a read or write right now: never closed to make room. */
  private readonly pins = new Map<number, number>();

  constructor(
    readonly dir: string,
    private readonly pool: ChunkFilePool,
  ) {}

  get chunkSize(): number {
    return this.pool.chunkSize;
  }

  private get appliedFile(): string {
    return join(this.dir, 'applied.json');
  }

  chunkPath(chunkId: number): string {
    return join(this.dir, `chunk_${chunkId}`);
  }

  /** Reads the persisted applied index; the copyset's directory is created when missing. */
  load(): this {
    mkdirSync(this.dir, { recursive: true });
    if (existsSync(this.appliedFile)) {
      const a = JSON.parse(readFileSync(this.appliedFile, 'utf8')) as { index: number; term: number };
      this.applied = a.index;
      this.appliedTerm = a.term;
    }
    return this;
  }

  chunkIds(): number[] {
    return readdirSync(this.dir)
      .map((n) => /^chunk_(\d+)$/.exec(n))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
  }

  exists(chunkId: number): boolean {
    return existsSync(this.chunkPath(chunkId));
  }

  /** The chunk's open file (one per chunk: a read and an apply may ask at once). */
  private handle(chunkId: number, create: boolean): Promise<FileHandle | null> {
    const open_ = this.handles.get(chunkId);
    if (open_) return Promise.resolve(open_);
    const pending = this.opening.get(chunkId);
    if (pending) return pending.then((fh) => fh ?? this.handle(chunkId, create));
    const p = this.openHandle(chunkId, create).finally(() => this.opening.delete(chunkId));
    this.opening.set(chunkId, p);
    return p;
  }

  private async openHandle(chunkId: number, create: boolean): Promise<FileHandle | null> {
    const path = this.chunkPath(chunkId);
    if (!existsSync(path)) {
      if (!create) return null;
      await this.pool.take(path);
    }
    const fh = await open(path, 'r+');
    // A bounded number of open files per copyset: the least recently used one not in use goes.
    if (this.handles.size >= MAX_OPEN_CHUNKS) {
      const old = [...this.handles.keys()].find((id) => !this.pins.has(id));
      if (old !== undefined) {
        const oldFh = this.handles.get(old)!;
        this.handles.delete(old);
        if (this.dirty.has(old)) await oldFh.datasync();
        this.dirty.delete(old);
        await oldFh.close();
      }
    }
    this.handles.set(chunkId, fh);
    return fh;
  }

  /** Runs `fn` with the chunk's open file (null: no such chunk and `create` false), kept open meanwhile. */
  private async withHandle<T>(chunkId: number, create: boolean, fn: (fh: FileHandle | null) => Promise<T>): Promise<T> {
    this.pins.set(chunkId, (this.pins.get(chunkId) ?? 0) + 1);
    try {
      const fh = await this.handle(chunkId, create);
      if (fh && this.handles.get(chunkId) === fh) {
        // Most recently used last: eviction takes the first unpinned one.
        this.handles.delete(chunkId);
        this.handles.set(chunkId, fh);
      }
      return await fn(fh);
    } finally {
      const n = this.pins.get(chunkId)! - 1;
      if (n === 0) this.pins.delete(chunkId);
      else this.pins.set(chunkId, n);
    }
  }

  async apply(entries: LogEntryForApply[]): Promise<unknown[]> {
    // Writes of the whole batch go out together (the chunk files take them in parallel) up to
    // a delete; pieces that overlap keep their log order (see writeAll).
    let writes: ChunkWrite[] = [];
    for (const e of entries) {
      const op = e.data.readUInt8(0);
      if (op === OP_WRITE) {
        writes.push({ chunkId: e.data.readUIntBE(1, 6), offset: e.data.readUInt32BE(7), data: e.data.subarray(HEADER) });
      } else if (op === OP_WRITEV) {
        decodeFrames(e.data.subarray(5), e.data.readUInt32BE(1), writes, `${this.dir} index ${e.index}`);
      } else if (op === OP_DELETE) {
        await this.writeAll(writes);
        writes = [];
        await this.drop(e.data.readUIntBE(1, 6));
      } else {
        throw new Error(`chunk copyset ${this.dir}: unknown op ${op} at index ${e.index}`);
      }
      this.applied = e.index;
      this.appliedTerm = e.term;
    }
    await this.writeAll(writes);
    return entries.map(() => null);
  }

  /** pwrites in parallel when no two pieces overlap, else one after the other in log order. */
  private async writeAll(writes: ChunkWrite[]): Promise<void> {
    if (writes.length === 0) return;
    const put = (w: ChunkWrite) =>
      this.withHandle(w.chunkId, true, async (fh) => {
        if (w.data.length > 0) await fh!.write(w.data, 0, w.data.length, w.offset);
        this.dirty.add(w.chunkId);
      });
    if (writes.length === 1 || !overlapping(writes)) {
      await Promise.all(writes.map(put));
      return;
    }
    for (const w of writes) await put(w);
  }

  private async drop(chunkId: number): Promise<void> {
    const fh = this.handles.get(chunkId);
    if (fh) {
      this.handles.delete(chunkId);
      this.dirty.delete(chunkId);
      await fh.close();
    }
    if (this.exists(chunkId)) await this.pool.give(this.chunkPath(chunkId));
  }

  /** Bytes of the chunk at [offset, offset + length); a chunk never written reads as zeros. */
  async read(chunkId: number, offset: number, length: number): Promise<Buffer> {
    const out = Buffer.alloc(length);
    await this.withHandle(chunkId, false, async (fh) => {
      if (fh) await fh.read(out, 0, length, offset);
    });
    return out;
  }

  async appliedIndex(): Promise<number> {
    return this.applied;
  }

  /** Makes every applied write durable, then records the applied index (write + rename). */
  async flush(): Promise<void> {
    for (const id of [...this.dirty]) {
      await this.handles.get(id)?.datasync();
      this.dirty.delete(id);
    }
    const tmp = `${this.appliedFile}.tmp`;
    await writeFile(tmp, JSON.stringify({ index: this.applied, term: this.appliedTerm }));
    const fh = await open(tmp, 'r');
    await fh.sync();
    await fh.close();
    await rename(tmp, this.appliedFile);
  }

  async snapshot(): Promise<{ index: number; term: number; chunks: AsyncIterable<Buffer> }> {
    const ids = this.chunkIds();
    const self = this;
    async function* frames(): AsyncIterable<Buffer> {
      for (const id of ids) {
        const piece = Buffer.alloc(PIECE);
        let fh: FileHandle;
        try {
          fh = await open(self.chunkPath(id), 'r');
        } catch {
          continue; // deleted meanwhile: the entries after the snapshot delete it anyway
        }
        try {
          let sent = false;
          for (let off = 0; off < self.chunkSize; off += PIECE) {
            const len = Math.min(PIECE, self.chunkSize - off);
            const { bytesRead } = await fh.read(piece, 0, len, off);
            const data = piece.subarray(0, bytesRead);
            if (isZero(data)) continue;
            yield frame(id, off, data);
            sent = true;
          }
          if (!sent) yield frame(id, 0, Buffer.alloc(0)); // exists, all zeros
        } finally {
          await fh.close();
        }
      }
    }
    return { index: this.applied, term: this.appliedTerm, chunks: frames() };
  }

  async restore(index: number, term: number, chunks: AsyncIterable<Buffer>): Promise<void> {
    for (const id of this.chunkIds()) await this.drop(id);
    let buf: Buffer = Buffer.alloc(0);
    for await (const c of chunks) {
      buf = buf.length === 0 ? c : Buffer.concat([buf, c]);
      while (buf.length >= FRAME) {
        const len = buf.readUInt32BE(10);
        if (buf.length < FRAME + len) break;
        const id = buf.readUIntBE(0, 6);
        const off = buf.readUInt32BE(6);
        const data = buf.subarray(FRAME, FRAME + len);
        await this.withHandle(id, true, async (fh) => {
          if (len > 0) await fh!.write(data, 0, len, off);
        });
        this.dirty.add(id);
        buf = buf.subarray(FRAME + len);
      }
    }
    if (buf.length > 0) throw new TierfsError(StatusCode.INTERNAL, `chunk snapshot for ${this.dir} ends inside a frame`);
    this.applied = index;
    this.appliedTerm = term;
  }

  async close(): Promise<void> {
    for (const fh of this.handles.values()) await fh.close();
    this.handles.clear();
    this.dirty.clear();
  }

  /** Returns every chunk to the pool and removes the directory (the copyset left this server). */
  async destroy(): Promise<void> {
    await this.close();
    if (!existsSync(this.dir)) return;
    for (const id of this.chunkIds()) await this.pool.give(this.chunkPath(id));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function frameHeader(id: number, off: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(FRAME);
  b.writeUIntBE(id, 0, 6);
  b.writeUInt32BE(off, 6);
  b.writeUInt32BE(length, 10);
  return b;
}

function frame(id: number, off: number, data: Buffer): Buffer {
  return Buffer.concat([frameHeader(id, off, data.length), data]);
}

/** Appends `count` frames of `buf` (chunk id, offset, length, bytes) to `out`. */
function decodeFrames(buf: Buffer, count: number, out: ChunkWrite[], where: string): void {
  let off = 0;
  for (let i = 0; i < count; i++) {
    if (off + FRAME > buf.length) throw new Error(`chunk entry ${where}: frame ${i} of ${count} is cut short`);
    const len = buf.readUInt32BE(off + 10);
    if (off + FRAME + len > buf.length) throw new Error(`chunk entry ${where}: frame ${i} of ${count} is cut short`);
    out.push({ chunkId: buf.readUIntBE(off, 6), offset: buf.readUInt32BE(off + 6), data: buf.subarray(off + FRAME, off + FRAME + len) });
    off += FRAME + len;
  }
}

/** Whether two of the writes touch a common byte of the same chunk. */
function overlapping(writes: ChunkWrite[]): boolean {
  const sorted = [...writes].sort((a, b) => a.chunkId - b.chunkId || a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const p = sorted[i - 1]!;
    const q = sorted[i]!;
    if (p.chunkId === q.chunkId && p.offset + p.data.length > q.offset) return true;
  }
  return false;
}
