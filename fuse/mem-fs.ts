// An in-memory inode filesystem behind the FuseFilesystem contract: the example filesystem,
// and what the fuse/ tests and benchmark mount. Deliberately plain: POSIX semantics where
// the tests look (hard links, rename flags, xattrs, unlink while open), no persistence. It
// has no fallocate, so tests can see what a missing method does.
import type {
  Attr,
  AttrOut,
  CreateOut,
  DirEntryPlus,
  EntryOut,
  FuseFilesystem,
  NegativeEntryOut,
  OpenOut,
  RequestContext,
  SetAttrIn,
  StatfsOut,
} from './types.js';
import { RENAME_EXCHANGE, RENAME_NOREPLACE, SEEK_DATA, SEEK_HOLE } from './types.js';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const O_TRUNC = 0o1000;

export function errno(code: string, n: number): Error {
  return Object.assign(new Error(code), { code, errno: n });
}
// Misses (ENOENT, ENODATA) are hot paths (every `ls -l` asks two xattrs per entry): one
// shared error each, since building an Error with its stack trace costs more than the request.
const ENOENT_ERR = errno('ENOENT', 2);
const ENODATA_ERR = errno('ENODATA', 61);
const ENOENT = () => ENOENT_ERR;
const EEXIST = () => errno('EEXIST', 17);
const ENOTDIR = () => errno('ENOTDIR', 20);
const EISDIR = () => errno('EISDIR', 21);
const EINVAL = () => errno('EINVAL', 22);
const ENOTEMPTY = () => errno('ENOTEMPTY', 39);
const ENODATA = () => ENODATA_ERR;
const ENXIO = () => errno('ENXIO', 6);

interface DirEntryRec {
  ino: number;
  seq: number;
}

export interface MemInode {
  attr: Attr;
  data: Buffer; // capacity >= attr.size for files
  target?: string;
  xattrs: Map<string, Buffer>;
  /** Directories: name -> entry, and entries in cookie order (stale ones skipped). */
  children?: Map<string, DirEntryRec>;
  order?: { seq: number; name: string }[];
  parent?: number;
}

export interface MemFsOptions {
  entryTimeoutMs?: number;
  attrTimeoutMs?: number;
  /** Called (and awaited) at the start of every read. */
  beforeRead?: (ctx: RequestContext, ino: number) => Promise<void>;
  /** Called (and awaited) at the start of every getattr. */
  beforeGetattr?: (ctx: RequestContext, ino: number) => Promise<void>;
  /** Entries one readdir call returns at most. */
  readdirBatch?: number;
}

export class MemFs implements FuseFilesystem {
  readonly inodes = new Map<number, MemInode>();
  private nextIno = 2;
  private nextSeq = 3;
  private nextFh = 1;
  /** Inodes with open handles (unlinked files stay until closed and forgotten). */
  private readonly openCount = new Map<number, number>();
  readonly counters = { lookups: 0, forgets: 0, reads: 0, getattrs: 0, readdirs: 0, copies: 0, largestRead: 0, largestWrite: 0 };
  /** Files opened with FOPEN_DIRECT_IO. */
  readonly directIo = new Set<number>();
  entryTimeoutMs: number;
  attrTimeoutMs: number;

  constructor(private readonly opts: MemFsOptions = {}) {
    this.entryTimeoutMs = opts.entryTimeoutMs ?? 1000;
    this.attrTimeoutMs = opts.attrTimeoutMs ?? 1000;
    const now = Date.now();
    this.inodes.set(1, {
      attr: { ino: 1, size: 4096, blocks: 8, atimeMs: now, mtimeMs: now, ctimeMs: now, mode: S_IFDIR | 0o755, nlink: 2, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, rdev: 0, blksize: 4096 },
      data: Buffer.alloc(0),
      xattrs: new Map(),
      children: new Map(),
      order: [],
      parent: 1,
    });
  }

  // ---- helpers (also used by tests to change things behind the kernel's back) ----

  get(ino: number): MemInode {
    const n = this.inodes.get(ino);
    if (!n) throw ENOENT();
    return n;
  }

  private dir(ino: number): MemInode {
    const n = this.get(ino);
    if (!n.children) throw ENOTDIR();
    return n;
  }

  private entry(ino: number): EntryOut {
    return { attr: { ...this.get(ino).attr }, entryTimeoutMs: this.entryTimeoutMs, attrTimeoutMs: this.attrTimeoutMs };
  }

  private newInode(ctx: { uid: number; gid: number }, mode: number, parent: number): MemInode {
    const now = Date.now();
    const ino = this.nextIno++;
    const isDir = (mode & S_IFMT) === S_IFDIR;
    const n: MemInode = {
      attr: { ino, size: isDir ? 4096 : 0, blocks: 0, atimeMs: now, mtimeMs: now, ctimeMs: now, mode, nlink: isDir ? 2 : 1, uid: ctx.uid, gid: ctx.gid, rdev: 0, blksize: 4096 },
      data: Buffer.alloc(0),
      xattrs: new Map(),
      parent,
    };
    if (isDir) {
      n.children = new Map();
      n.order = [];
    }
    this.inodes.set(ino, n);
    return n;
  }

  private addName(parent: number, name: string, ino: number): void {
    const d = this.dir(parent);
    const seq = this.nextSeq++;
    d.children!.set(name, { ino, seq });
    d.order!.push({ seq, name });
    const now = Date.now();
    d.attr.mtimeMs = d.attr.ctimeMs = now;
  }

  private unlinkName(parent: number, name: string): void {
    const d = this.dir(parent);
    d.children!.delete(name);
    if (d.order!.length > 64 && d.order!.length > 2 * d.children!.size) {
      d.order = d.order!.filter((o) => d.children!.get(o.name)?.seq === o.seq);
    }
    const now = Date.now();
    d.attr.mtimeMs = d.attr.ctimeMs = now;
  }

  private maybeDrop(ino: number): void {
    const n = this.inodes.get(ino);
    if (n && n.attr.nlink === 0 && !this.openCount.get(ino)) n.data = Buffer.alloc(0);
  }

  /** Adds a file directly (no syscalls): for tests that need many names fast. */
  addFile(parent: number, name: string, content: Buffer | string = ''): number {
    const n = this.newInode({ uid: 0, gid: 0 }, S_IFREG | 0o644, parent);
    const b = Buffer.from(content);
    n.data = Buffer.from(b);
    n.attr.size = b.length;
    n.attr.blocks = Math.ceil(b.length / 512);
    this.addName(parent, name, n.attr.ino);
    return n.attr.ino;
  }

  addDir(parent: number, name: string): number {
    const n = this.newInode({ uid: 0, gid: 0 }, S_IFDIR | 0o755, parent);
    this.addName(parent, name, n.attr.ino);
    this.get(parent).attr.nlink++;
    return n.attr.ino;
  }

  // ---- FuseFilesystem ----

  async lookup(_ctx: RequestContext, parent: number, name: string): Promise<EntryOut | NegativeEntryOut> {
    this.counters.lookups++;
    const d = this.dir(parent);
    if (name === '.') return this.entry(parent);
    if (name === '..') return this.entry(d.parent ?? 1);
    const e = d.children!.get(name);
    if (!e) throw ENOENT();
    return this.entry(e.ino);
  }

  forget(ino: number): void {
    this.counters.forgets++;
    const n = this.inodes.get(ino);
    if (n && n.attr.nlink === 0 && !this.openCount.get(ino)) this.inodes.delete(ino);
  }

  async getattr(ctx: RequestContext, ino: number): Promise<AttrOut> {
    this.counters.getattrs++;
    if (this.opts.beforeGetattr) await this.opts.beforeGetattr(ctx, ino);
    return { attr: { ...this.get(ino).attr }, attrTimeoutMs: this.attrTimeoutMs };
  }

  async setattr(_ctx: RequestContext, ino: number, c: SetAttrIn): Promise<AttrOut> {
    const n = this.get(ino);
    const now = Date.now();
    if (c.mode !== undefined) n.attr.mode = (n.attr.mode & S_IFMT) | (c.mode & 0o7777);
    if (c.uid !== undefined) n.attr.uid = c.uid;
    if (c.gid !== undefined) n.attr.gid = c.gid;
    if (c.size !== undefined) {
      if (n.children) throw EISDIR();
      this.resize(n, c.size);
      n.attr.mtimeMs = now;
    }
    if (c.atimeMs !== undefined) n.attr.atimeMs = c.atimeMs === 'now' ? now : c.atimeMs;
    if (c.mtimeMs !== undefined) n.attr.mtimeMs = c.mtimeMs === 'now' ? now : c.mtimeMs;
    n.attr.ctimeMs = c.ctimeMs ?? now;
    return { attr: { ...n.attr }, attrTimeoutMs: this.attrTimeoutMs };
  }

  private resize(n: MemInode, size: number): void {
    if (size > n.data.length) {
      const grown = Buffer.alloc(Math.max(size, Math.min(n.data.length * 2, size + (64 << 20))));
      n.data.copy(grown, 0, 0, n.attr.size);
      n.data = grown;
    } else if (size < n.attr.size) {
      n.data.fill(0, size, n.attr.size);
    }
    n.attr.size = size;
    n.attr.blocks = Math.ceil(size / 512);
  }

  async readlink(_ctx: RequestContext, ino: number): Promise<string> {
    const n = this.get(ino);
    if (n.target === undefined) throw EINVAL();
    return n.target;
  }

  async symlink(ctx: RequestContext, parent: number, name: string, target: string): Promise<EntryOut> {
    if (this.dir(parent).children!.has(name)) throw EEXIST();
    const n = this.newInode(ctx, S_IFLNK | 0o777, parent);
    n.target = target;
    n.attr.size = Buffer.byteLength(target);
    this.addName(parent, name, n.attr.ino);
    return this.entry(n.attr.ino);
  }

  async mknod(ctx: RequestContext, parent: number, name: string, mode: number, rdev: number): Promise<EntryOut> {
    if (this.dir(parent).children!.has(name)) throw EEXIST();
    const n = this.newInode(ctx, mode, parent);
    n.attr.rdev = rdev;
    this.addName(parent, name, n.attr.ino);
    return this.entry(n.attr.ino);
  }

  async mkdir(ctx: RequestContext, parent: number, name: string, mode: number): Promise<EntryOut> {
    const d = this.dir(parent);
    if (d.children!.has(name)) throw EEXIST();
    const n = this.newInode(ctx, S_IFDIR | (mode & 0o7777), parent);
    this.addName(parent, name, n.attr.ino);
    d.attr.nlink++;
    return this.entry(n.attr.ino);
  }

  async unlink(_ctx: RequestContext, parent: number, name: string): Promise<void> {
    const e = this.dir(parent).children!.get(name);
    if (!e) throw ENOENT();
    const n = this.get(e.ino);
    if (n.children) throw EISDIR();
    this.unlinkName(parent, name);
    n.attr.nlink--;
    n.attr.ctimeMs = Date.now();
    this.maybeDrop(e.ino);
  }

  async rmdir(_ctx: RequestContext, parent: number, name: string): Promise<void> {
    const d = this.dir(parent);
    const e = d.children!.get(name);
    if (!e) throw ENOENT();
    const n = this.get(e.ino);
    if (!n.children) throw ENOTDIR();
    if (n.children.size > 0) throw ENOTEMPTY();
    this.unlinkName(parent, name);
    n.attr.nlink = 0;
    d.attr.nlink--;
  }

  async rename(_ctx: RequestContext, parent: number, name: string, newParent: number, newName: string, flags: number): Promise<void> {
    const from = this.dir(parent);
    const to = this.dir(newParent);
    const src = from.children!.get(name);
    if (!src) throw ENOENT();
    const dst = to.children!.get(newName);
    const srcNode = this.get(src.ino);
    if (flags & RENAME_EXCHANGE) {
      if (!dst) throw ENOENT();
      const dstNode = this.get(dst.ino);
      from.children!.set(name, { ino: dst.ino, seq: src.seq });
      to.children!.set(newName, { ino: src.ino, seq: dst.seq });
      srcNode.parent = newParent;
      dstNode.parent = parent;
      if (srcNode.children && !dstNode.children && parent !== newParent) { from.attr.nlink--; to.attr.nlink++; }
      if (dstNode.children && !srcNode.children && parent !== newParent) { to.attr.nlink--; from.attr.nlink++; }
      const now = Date.now();
      srcNode.attr.ctimeMs = dstNode.attr.ctimeMs = now;
      return;
    }
    if (dst) {
      if (flags & RENAME_NOREPLACE) throw EEXIST();
      if (dst.ino === src.ino) return;
      const dstNode = this.get(dst.ino);
      if (dstNode.children) {
        if (!srcNode.children) throw EISDIR();
        if (dstNode.children.size > 0) throw ENOTEMPTY();
        dstNode.attr.nlink = 0;
        to.attr.nlink--;
      } else {
        if (srcNode.children) throw ENOTDIR();
        dstNode.attr.nlink--;
      }
      this.unlinkName(newParent, newName);
      this.maybeDrop(dst.ino);
    }
    this.unlinkName(parent, name);
    this.addName(newParent, newName, src.ino);
    srcNode.parent = newParent;
    if (srcNode.children && parent !== newParent) {
      from.attr.nlink--;
      to.attr.nlink++;
    }
    srcNode.attr.ctimeMs = Date.now();
  }

  async link(_ctx: RequestContext, ino: number, newParent: number, newName: string): Promise<EntryOut> {
    const n = this.get(ino);
    if (n.children) throw errno('EPERM', 1);
    if (this.dir(newParent).children!.has(newName)) throw EEXIST();
    n.attr.nlink++;
    n.attr.ctimeMs = Date.now();
    this.addName(newParent, newName, ino);
    return this.entry(ino);
  }

  private openHandle(ino: number): OpenOut {
    this.openCount.set(ino, (this.openCount.get(ino) ?? 0) + 1);
    return { fh: this.nextFh++, directIo: this.directIo.has(ino) };
  }

  async open(_ctx: RequestContext, ino: number, flags: number): Promise<OpenOut> {
    const n = this.get(ino);
    if (flags & O_TRUNC && !n.children) {
      this.resize(n, 0);
      n.attr.mtimeMs = n.attr.ctimeMs = Date.now();
    }
    return this.openHandle(ino);
  }

  async create(ctx: RequestContext, parent: number, name: string, mode: number, flags: number): Promise<CreateOut> {
    const d = this.dir(parent);
    const existing = d.children!.get(name);
    if (existing) {
      if (flags & 0o200) throw EEXIST(); // O_EXCL
      return { entry: this.entry(existing.ino), open: await this.open(ctx, existing.ino, flags) };
    }
    const n = this.newInode(ctx, S_IFREG | (mode & 0o7777), parent);
    this.addName(parent, name, n.attr.ino);
    return { entry: this.entry(n.attr.ino), open: this.openHandle(n.attr.ino) };
  }

  async read(ctx: RequestContext, ino: number, _fh: number, offset: number, target: Buffer): Promise<number> {
    this.counters.reads++;
    this.counters.largestRead = Math.max(this.counters.largestRead, target.length);
    if (this.opts.beforeRead) await this.opts.beforeRead(ctx, ino);
    const n = this.get(ino);
    if (offset >= n.attr.size) return 0;
    const end = Math.min(n.attr.size, offset + target.length);
    return n.data.copy(target, 0, offset, end);
  }

  async write(_ctx: RequestContext, ino: number, _fh: number, offset: number, data: Buffer): Promise<number> {
    this.counters.largestWrite = Math.max(this.counters.largestWrite, data.length);
    const n = this.get(ino);
    const end = offset + data.length;
    if (end > n.attr.size) this.resize(n, end);
    data.copy(n.data, offset);
    n.attr.mtimeMs = n.attr.ctimeMs = Date.now();
    return data.length;
  }

  async flush(): Promise<void> {}

  async release(_ctx: RequestContext, ino: number): Promise<void> {
    const c = (this.openCount.get(ino) ?? 1) - 1;
    if (c > 0) this.openCount.set(ino, c);
    else this.openCount.delete(ino);
    this.maybeDrop(ino);
  }

  async fsync(): Promise<void> {}

  async opendir(_ctx: RequestContext, ino: number): Promise<OpenOut> {
    this.dir(ino);
    return { fh: this.nextFh++ };
  }

  async readdir(_ctx: RequestContext, ino: number, _fh: number, offset: number, plus: boolean): Promise<DirEntryPlus[]> {
    this.counters.readdirs++;
    const d = this.dir(ino);
    const out: DirEntryPlus[] = [];
    const batch = this.opts.readdirBatch ?? 256;
    if (offset < 1) out.push({ name: '.', ino, type: S_IFDIR, offset: 1 });
    if (offset < 2) out.push({ name: '..', ino: d.parent ?? 1, type: S_IFDIR, offset: 2 });
    const order = d.order!;
    // First entry with seq > offset (order is sorted by seq).
    let lo = 0;
    let hi = order.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (order[mid]!.seq <= offset) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < order.length && out.length < batch; i++) {
      const o = order[i]!;
      const e = d.children!.get(o.name);
      if (!e || e.seq !== o.seq) continue;
      const child = this.get(e.ino);
      out.push({ name: o.name, ino: e.ino, type: child.attr.mode & S_IFMT, offset: o.seq, entry: plus ? this.entry(e.ino) : undefined });
    }
    return out;
  }

  async releasedir(): Promise<void> {}

  async statfs(): Promise<StatfsOut> {
    return { blocks: 1 << 20, bfree: 1 << 19, bavail: 1 << 19, files: 1 << 20, ffree: (1 << 20) - this.inodes.size, bsize: 4096, frsize: 4096, namelen: 255 };
  }

  async setxattr(_ctx: RequestContext, ino: number, name: string, value: Buffer, flags: number): Promise<void> {
    const n = this.get(ino);
    if (flags & 1 && n.xattrs.has(name)) throw EEXIST();
    if (flags & 2 && !n.xattrs.has(name)) throw ENODATA();
    n.xattrs.set(name, Buffer.from(value));
    n.attr.ctimeMs = Date.now();
  }

  async getxattr(_ctx: RequestContext, ino: number, name: string): Promise<Buffer> {
    const v = this.get(ino).xattrs.get(name);
    if (!v) throw ENODATA();
    return v;
  }

  async listxattr(_ctx: RequestContext, ino: number): Promise<string[]> {
    return [...this.get(ino).xattrs.keys()];
  }

  async removexattr(_ctx: RequestContext, ino: number, name: string): Promise<void> {
    const n = this.get(ino);
    if (!n.xattrs.delete(name)) throw ENODATA();
  }

  async lseek(_ctx: RequestContext, ino: number, _fh: number, offset: number, whence: number): Promise<number> {
    const size = this.get(ino).attr.size;
    if (offset >= size) throw ENXIO();
    if (whence === SEEK_DATA) return offset;
    if (whence === SEEK_HOLE) return size;
    throw EINVAL();
  }

  async copyFileRange(
    ctx: RequestContext,
    inoIn: number, _fhIn: number, offIn: number,
    inoOut: number, fhOut: number, offOut: number,
    length: number,
  ): Promise<number> {
    this.counters.copies++;
    const src = this.get(inoIn);
    const n = Math.max(0, Math.min(length, src.attr.size - offIn));
    if (n === 0) return 0;
    const chunk = Buffer.from(src.data.subarray(offIn, offIn + n));
    return this.write(ctx, inoOut, fhOut, offOut, chunk);
  }
}
