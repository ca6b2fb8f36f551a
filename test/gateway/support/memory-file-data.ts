// An in-memory FileData: file contents as growable buffers. It records the largest single
// write it saw, so a test can prove the kernel sends big writes through the mount.
import type { FileData } from '../../../gateway/file-data.js';
import type { SliceRecord } from '../../../metaserver/meta-client.js';
import type { EvictResult, WarmupResult } from '../../../s3adaptor/cache-control.js';

export class MemoryFileData implements FileData {
  /** Contents with spare capacity (doubling), so sequential writes are not quadratic. */
  private readonly files = new Map<number, { buf: Buffer; len: number }>();
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
  }

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
  }

  invalidate(_ino: number): void {}

  async deleteObjects(ino: number, _slices: Map<number, SliceRecord[]>): Promise<void> {
    this.files.delete(ino);
  }

  /** Drops an inode's data (the mount calls deleteObjects through releaseOrphan's caller). */
  forget(ino: number): void {
    this.files.delete(ino);
  }

  async flushAll(): Promise<void> {}
  async waitUploaded(): Promise<void> {}

  stats(): { kind: string; files: number; bytes: number; writes: number; maxWriteBytes: number; maxReadBytes: number; flushes: number } {
    let bytes = 0;
    for (const f of this.files.values()) bytes += f.len;
    return { kind: 'memory', files: this.files.size, bytes, writes: this.writes, maxWriteBytes: this.maxWriteBytes, maxReadBytes: this.maxReadBytes, flushes: this.flushes };
  }

  async close(): Promise<void> {}
}
