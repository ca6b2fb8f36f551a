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
const HEADER = 11; // op u8, chunk id u48, offset u32
/** Snapshot frames carry 1 MiB pieces; all-zero pieces are skipped. */
const PIECE = 1 << 20;
const FRAME = 14; // chunk id u48, offset u32, length u32

export function encodeWrite(chunkId: number, offset: number, data: Buffer): Buffer {
  const b = Buffer.allocUnsafe(HEADER + data.length);
  b.writeUInt8(OP_WRITE, 0);
  b.writeUIntBE(chunkId, 1, 6);
  b.writeUInt32BE(offset, 7);
  data.copy(b, HEADER);
  return b;
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
    // A bounded number of open files per copyset.
    if (this.handles.size >= 256) {
      const [oldId, old] = this.handles.entries().next().value as [number, FileHandle];
      if (this.dirty.has(oldId)) await old.datasync();
      this.dirty.delete(oldId);
      this.handles.delete(oldId);
      await old.close();
    }
    this.handles.set(chunkId, fh);
    return fh;
  }

  async apply(entries: LogEntryForApply[]): Promise<unknown[]> {
    for (const e of entries) {
      const op = e.data.readUInt8(0);
      const chunkId = e.data.readUIntBE(1, 6);
      if (op === OP_WRITE) {
        const offset = e.data.readUInt32BE(7);
        const fh = (await this.handle(chunkId, true))!;
        const data = e.data.subarray(HEADER);
        await fh.write(data, 0, data.length, offset);
        this.dirty.add(chunkId);
      } else if (op === OP_DELETE) {
        await this.drop(chunkId);
      } else {
        throw new Error(`chunk copyset ${this.dir}: unknown op ${op} at index ${e.index}`);
      }
      this.applied = e.index;
      this.appliedTerm = e.term;
    }
    return entries.map(() => null);
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
    const fh = await this.handle(chunkId, false);
    if (fh) await fh.read(out, 0, length, offset);
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
        const fh = (await this.handle(id, true))!;
        if (len > 0) await fh.write(buf, FRAME, len, off);
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

function frame(id: number, off: number, data: Buffer): Buffer {
  const b = Buffer.allocUnsafe(FRAME + data.length);
  b.writeUIntBE(id, 0, 6);
  b.writeUInt32BE(off, 6);
  b.writeUInt32BE(data.length, 10);
  data.copy(b, FRAME);
  return b;
}
