// A one-file filesystem for the fuse/ server: the volume as a regular file, so the host can
// attach it with `losetup --direct-io=on` (how s3backer exposes its block device on a kernel
// without nbd or ublk). Every read and write goes straight to the block client (direct I/O,
// no page cache here); FLUSH and FSYNC wait for writes in flight, which are on a Raft majority
// once acknowledged.
import type { AttrOut, DirEntryPlus, EntryOut, FuseFilesystem, NegativeEntryOut, OpenOut, RequestContext, SetAttrIn, StatfsOut } from '../fuse/index.js';
import type { VolumeClient } from './volume-client.js';

const ROOT = 1;
const FILE = 2;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const err = (code: string, errno: number) => Object.assign(new Error(code), { code, errno });

export const VOLUME_FILE = 'volume';

export class VolumeFileFs implements FuseFilesystem {
  private readonly started = Date.now();

  constructor(private readonly volume: VolumeClient) {}

  private attr(ino: number): AttrOut['attr'] {
    const t = this.started;
    const file = ino === FILE;
    return {
      ino, size: file ? this.volume.size : 4096, blocks: file ? Math.ceil(this.volume.size / 512) : 8,
      atimeMs: t, mtimeMs: t, ctimeMs: t, mode: file ? S_IFREG | (this.volume.readOnly ? 0o400 : 0o600) : S_IFDIR | 0o700,
      nlink: file ? 1 : 2, uid: 0, gid: 0, rdev: 0, blksize: 4096,
    };
  }

  private entry(ino: number): EntryOut {
    return { attr: this.attr(ino), entryTimeoutMs: 3_600_000, attrTimeoutMs: 3_600_000 };
  }

  async lookup(_ctx: RequestContext, parent: number, name: string): Promise<EntryOut | NegativeEntryOut> {
    if (parent !== ROOT) throw err('ENOTDIR', 20);
    if (name === VOLUME_FILE) return this.entry(FILE);
    if (name === '.' || name === '..') return this.entry(ROOT);
    return { ino: 0, entryTimeoutMs: 3_600_000 };
  }

  async getattr(_ctx: RequestContext, ino: number): Promise<AttrOut> {
    if (ino !== ROOT && ino !== FILE) throw err('ENOENT', 2);
    return { attr: this.attr(ino), attrTimeoutMs: 3_600_000 };
  }

  async setattr(_ctx: RequestContext, ino: number, changes: SetAttrIn): Promise<AttrOut> {
    // The size of a volume changes through `tierfs volume extend`, never by truncate.
    if (changes.size !== undefined && changes.size !== this.volume.size) throw err('EPERM', 1);
    return this.getattr(_ctx, ino);
  }

  async open(_ctx: RequestContext, ino: number, flags: number): Promise<OpenOut> {
    if (ino !== FILE) throw err('EISDIR', 21);
    if (this.volume.readOnly && (flags & 3) !== 0) throw err('EROFS', 30);
    return { fh: 1, directIo: true };
  }

  async read(_ctx: RequestContext, _ino: number, _fh: number, offset: number, target: Buffer): Promise<number> {
    const n = Math.max(0, Math.min(target.length, this.volume.size - offset));
    if (n === 0) return 0;
    await this.volume.read(offset, target.subarray(0, n));
    return n;
  }

  async write(_ctx: RequestContext, _ino: number, _fh: number, offset: number, data: Buffer): Promise<number> {
    if (offset + data.length > this.volume.size) throw err('ENOSPC', 28);
    await this.volume.write(offset, data);
    return data.length;
  }

  async fallocate(_ctx: RequestContext, _ino: number, _fh: number, offset: number, length: number, mode: number): Promise<void> {
    // PUNCH_HOLE|KEEP_SIZE is what loop sends for a discard: trim the range.
    if (mode === 0x03) return this.volume.trim(offset, Math.min(length, this.volume.size - offset));
    if (mode === 0 && offset + length <= this.volume.size) return; // already allocated as far as anyone can see
    throw err('EOPNOTSUPP', 95);
  }

  async flush(): Promise<void> {
    await this.volume.flush();
  }

  async fsync(): Promise<void> {
    await this.volume.flush();
  }

  async opendir(_ctx: RequestContext, ino: number): Promise<OpenOut> {
    if (ino !== ROOT) throw err('ENOTDIR', 20);
    return { fh: 2 };
  }

  async readdir(_ctx: RequestContext, _ino: number, _fh: number, offset: number, plus: boolean): Promise<DirEntryPlus[]> {
    const all: DirEntryPlus[] = [
      { name: '.', ino: ROOT, type: S_IFDIR, offset: 1 },
      { name: '..', ino: ROOT, type: S_IFDIR, offset: 2 },
      { name: VOLUME_FILE, ino: FILE, type: S_IFREG, offset: 3, entry: plus ? this.entry(FILE) : undefined },
    ];
    return all.slice(offset);
  }

  async statfs(): Promise<StatfsOut> {
    const blocks = Math.ceil(this.volume.size / 4096);
    return { blocks, bfree: 0, bavail: 0, files: 1, ffree: 0, bsize: 4096, frsize: 4096, namelen: 255 };
  }
}
