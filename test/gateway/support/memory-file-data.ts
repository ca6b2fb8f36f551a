// An in-memory FileData: file contents as growable buffers, and which byte ranges were
// written (for holes, SEEK_DATA/SEEK_HOLE and st_blocks). It records the largest single
// write it saw, so a test can prove the kernel sends big writes through the mount.
import type { FileData } from '../../../gateway/file-data.js';
import type { SliceRecord } from '../../../metaserver/meta-client.js';
import type { EvictResult, WarmupResult } from '../../../s3adaptor/cache-control.js';

/** Sorted, disjoint [start, end) ranges. */
type Ranges = Array<[number, number]>;

function addRange(r: Ranges, start: number, end: number): Ranges {
  const out: Ranges = [];
  for (const [s, e] of r) {
    if (e < start || s > end) out.push([s, e]);
    else {
      start = Math.min(start, s);
      end = Math.max(end, e);
    }
  }
  out.push([start, end]);
  return out.sort((a, b) => a[0] - b[0]);
}

function removeRange(r: Ranges, start: number, end: number): Ranges {
  const out: Ranges = [];
  for (const [s, e] of r) {
    if (e <= start || s >= end) out.push([s, e]);
    else {
      if (s < start) out.push([s, start]);
      if (e > end) out.push([end, e]);
    }
  }
  return out;
}

const ENXIO = 6;

export class MemoryFileData implements FileData {
  /** Contents with spare capacity (doubling), so sequential writes are not quadratic. */
  private readonly files = new Map<number, { buf: Buffer; len: number }>();
  /** Ranges holding written data, per inode. */
  private readonly written = new Map<number, Ranges>();
  private maxWriteBytes = 0;
  private maxReadBytes = 0;
  private writes = 0;
  private flushes = 0;

  private content(ino: number): Buffer {
    const f = this.files.get(ino);
    return f ? f.buf.subarray(0, f.len) : Buffer.alloc(0);
  }

  async write(ino: number, offset: number, data: Buffer): Promise<void> {
    this.writes++;
    this.maxWriteBytes = Math.max(this.maxWriteBytes, data.length);
    const f = this.files.get(ino) ?? { buf: Buffer.alloc(0), len: 0 };
    const end = offset + data.length;
    if (end > f.buf.length) {
      const grown = Buffer.alloc(Math.max(end, f.buf.length * 2));
      f.buf.copy(grown, 0, 0, f.len);
      f.buf = grown;
    }
    data.copy(f.buf, offset);
    f.len = Math.max(f.len, end);
    this.files.set(ino, f);
    if (data.length > 0) this.written.set(ino, addRange(this.written.get(ino) ?? [], offset, end));
  }

  async punchHole(ino: number, offset: number, length: number, _size: number): Promise<void> {
    const f = this.files.get(ino);
    if (f) f.buf.fill(0, Math.min(offset, f.len), Math.min(offset + length, f.len));
    this.written.set(ino, removeRange(this.written.get(ino) ?? [], offset, offset + length));
  }

  async zeroRange(ino: number, offset: number, length: number, size: number, keepSize = false): Promise<number> {
    await this.punchHole(ino, offset, length, size);
    return keepSize ? size : Math.max(size, offset + length);
  }

  async allocate(ino: number, offset: number, length: number, size: number, keepSize = false): Promise<number> {
    const end = offset + length;
    if (keepSize || end <= size) return size;
    await this.truncate(ino, size, end);
    return end;
  }

  async allocatedBytes(ino: number): Promise<number> {
    return (this.written.get(ino) ?? []).reduce((n, [s, e]) => n + e - s, 0);
  }

  async seekData(ino: number, offset: number, size: number): Promise<number> {
    for (const [s, e] of this.written.get(ino) ?? []) if (e > offset && s < size) return Math.max(s, offset);
    throw Object.assign(new Error('no data after the offset'), { code: 'ENXIO', errno: ENXIO });
  }

  async seekHole(ino: number, offset: number, size: number): Promise<number> {
    for (const [s, e] of this.written.get(ino) ?? []) if (s <= offset && e > offset) return Math.min(e, size);
    return offset;
  }

  /** Copies bytes (a memory store has nothing to reference) and counts the copies. */
  async copyRange(srcIno: number, srcOffset: number, dstIno: number, dstOffset: number, length: number, srcSize: number): Promise<number> {
    length = Math.max(0, Math.min(length, srcSize - srcOffset));
    if (length === 0) return 0;
    this.copies++;
    const src = this.content(srcIno);
    const data = Buffer.alloc(length);
    src.copy(data, 0, srcOffset, Math.min(srcOffset + length, src.length));
    await this.write(dstIno, dstOffset, data);
    return length;
  }

  copies = 0;

  async read(ino: number, offset: number, length: number, fileSize: number): Promise<Buffer> {
    const end = Math.min(offset + length, fileSize);
    if (end <= offset) return Buffer.alloc(0);
    const out = Buffer.alloc(end - offset);
    const buf = this.content(ino);
    if (offset < buf.length) buf.copy(out, 0, offset, Math.min(end, buf.length));
    return out;
  }

  /** Everything is in memory: nothing to warm or evict, no disk cache limits. */
  async warmup(ino: number, fileSize: number): Promise<WarmupResult> {
    return { blocks: 0, bytes: Math.min(fileSize, this.content(ino).length), fetchedBlocks: 0, fetchedBytes: 0, skippedFull: 0 };
  }

  async evict(): Promise<EvictResult> {
    return { blocks: 0, bytes: 0 };
  }

  cacheLimits(): null {
    return null;
  }

  async readInto(ino: number, offset: number, target: Buffer, fileSize: number): Promise<number> {
    this.maxReadBytes = Math.max(this.maxReadBytes, target.length);
    const data = await this.read(ino, offset, target.length, fileSize);
    return data.copy(target);
  }

  async flush(_ino: number): Promise<void> {
    this.flushes++;
  }

  async fsync(ino: number): Promise<void> {
    await this.flush(ino);
  }

  async truncate(ino: number, _oldSize: number, newSize: number): Promise<void> {
    const buf = this.content(ino);
    // Shrinking drops the bytes, so a later extension reads zeros there.
    if (newSize < buf.length) this.files.set(ino, { buf: Buffer.from(buf.subarray(0, newSize)), len: newSize });
    this.written.set(ino, removeRange(this.written.get(ino) ?? [], newSize, Infinity));
  }

  invalidate(_ino: number): void {}

  async deleteObjects(ino: number, _slices: Map<number, SliceRecord[]>): Promise<void> {
    this.files.delete(ino);
    this.written.delete(ino);
  }

  /** Drops an inode's data (the mount calls deleteObjects through releaseOrphan's caller). */
  forget(ino: number): void {
    this.files.delete(ino);
  }

  async flushAll(): Promise<void> {}
  async waitUploaded(): Promise<void> {}

  stats(): { kind: string; files: number; bytes: number; writes: number; maxWriteBytes: number; maxReadBytes: number; flushes: number; copies: number } {
    let bytes = 0;
    for (const f of this.files.values()) bytes += f.len;
    return { kind: 'memory', files: this.files.size, bytes, writes: this.writes, maxWriteBytes: this.maxWriteBytes, maxReadBytes: this.maxReadBytes, flushes: this.flushes, copies: this.copies };
  }

  async close(): Promise<void> {}
}
