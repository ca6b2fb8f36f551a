// The inode-based VFS of the mount (the shape of JuiceFS's pkg/vfs): implements the FUSE
// server's FuseFilesystem by inode number, never by path. This facade holds attributes,
// statfs and the kernel's FORGET; names, file contents and xattrs live in their own parts.
import type {
  AttrOut, CreateOut, DirEntryPlus, EntryOut, FuseFilesystem, FuseNotifier, NegativeEntryOut,
  OpenOut, RequestContext, SetAttrIn, StatfsOut,
} from '../fuse/types.js';
import { MAX_NAME_BYTES, ROOT_INO, type Inode, type MetaClient, type SetAttrChanges } from '../metaserver/meta-client.js';
import type { FileData } from './file-data.js';
import { VfsCore, type VfsOptions } from './vfs-core.js';
import { VfsFiles } from './vfs-files.js';
import { VfsNamespace } from './vfs-namespace.js';
import { VfsXattr } from './vfs-xattr.js';

export type { VfsOptions } from './vfs-core.js';

const STATFS_BLOCK = 1 << 20;
const STATFS_TOTAL_BYTES = 2 ** 50;
const STATFS_TOTAL_INODES = 2 ** 32 - 1;

/** A request context for calls that do not come from the kernel (admin commands, tests). */
export function internalContext(uid = process.getuid?.() ?? 0, gid = process.getgid?.() ?? 0): RequestContext {
  return { unique: 0n, uid, gid, pid: process.pid, signal: new AbortController().signal };
}

export class Vfs implements FuseFilesystem {
  readonly core: VfsCore;
  readonly names: VfsNamespace;
  readonly files: VfsFiles;
  readonly xattr: VfsXattr;

  constructor(meta: MetaClient, data: FileData, opts: VfsOptions = {}) {
    this.core = new VfsCore(meta, data, opts);
    this.names = new VfsNamespace(this.core);
    this.files = new VfsFiles(this.core, this.names);
    this.xattr = new VfsXattr(this.core);
  }

  /** The mount is up: from now on we can tell the kernel what to drop, and ask what it holds. */
  attachKernel(notifier: FuseNotifier | null, kernelRefs: ((ino: number) => number) | null): void {
    this.core.notifier = notifier;
    this.core.kernelRefs = kernelRefs;
  }

  // ---- attributes ----

  async getattr(_ctx: RequestContext, ino: number, _fh?: number): Promise<AttrOut> {
    if (this.core.appends.pending(ino)) await this.core.appends.settle(ino); // the size after this mount's appends
    return this.core.attrOut((await this.core.table.get(ino)).inode);
  }

  async setattr(_ctx: RequestContext, ino: number, changes: SetAttrIn): Promise<AttrOut> {
    this.core.assertWritable();
    const { table, meta } = this.core;
    if (changes.size !== undefined) await this.files.truncate(ino, changes.size);
    const now = Date.now();
    const time = (t: number | 'now' | undefined) => (t === 'now' ? now : t);
    const c: SetAttrChanges = {};
    if (changes.mode !== undefined) c.mode = changes.mode & 0o7777;
    if (changes.uid !== undefined) c.uid = changes.uid;
    if (changes.gid !== undefined) c.gid = changes.gid;
    if (changes.atimeMs !== undefined) c.atimeMs = time(changes.atimeMs);
    if (changes.mtimeMs !== undefined) c.mtimeMs = time(changes.mtimeMs);
    const onlySize = Object.keys(c).length === 0;
    if (!onlySize || changes.size === undefined) {
      // An explicit mtime also wins over what buffered writes would commit later.
      const dirty = table.open.inode(ino)?.dirty;
      if (dirty && c.mtimeMs !== undefined) dirty.mtimeMs = c.mtimeMs;
      table.remember(await meta.setAttr(ino, { ctimeMs: changes.ctimeMs ?? now, ...c }));
    }
    return this.core.attrOut((await table.get(ino)).inode);
  }

  async access(_ctx: RequestContext, ino: number, _mask: number): Promise<void> {
    // Permission bits are checked by the kernel (default_permissions); here only existence.
    await this.core.table.get(ino);
  }

  async statfs(_ctx: RequestContext, _ino: number): Promise<StatfsOut> {
    const usage = await this.core.meta.usage();
    const blocks = Math.floor(STATFS_TOTAL_BYTES / STATFS_BLOCK);
    const used = Math.ceil(usage.usedBytes / STATFS_BLOCK);
    const free = Math.max(0, blocks - used);
    const ffree = Math.max(0, STATFS_TOTAL_INODES - usage.inodes);
    return { bsize: STATFS_BLOCK, frsize: STATFS_BLOCK, blocks, bfree: free, bavail: free, files: STATFS_TOTAL_INODES, ffree, namelen: MAX_NAME_BYTES };
  }

  forget(ino: number): void {
    this.core.table.forget(ino);
    if (this.core.pendingOrphans.has(ino)) {
      this.core.releaseIfOrphan(ino).catch((err: unknown) =>
        this.core.log.warn({ ino, err: String(err) }, 'could not release an unlinked inode the kernel forgot'),
      );
    }
  }

  // ---- names (vfs-namespace.ts) ----

  lookup(ctx: RequestContext, parent: number, name: string): Promise<EntryOut | NegativeEntryOut> {
    return this.names.lookup(ctx, parent, name);
  }
  readlink(ctx: RequestContext, ino: number): Promise<string> {
    return this.names.readlink(ctx, ino);
  }
  symlink(ctx: RequestContext, parent: number, name: string, target: string): Promise<EntryOut> {
    return this.names.symlink(ctx, parent, name, target);
  }
  mknod(ctx: RequestContext, parent: number, name: string, mode: number, rdev: number, umask: number): Promise<EntryOut> {
    return this.names.mknod(ctx, parent, name, mode, rdev, umask);
  }
  mkdir(ctx: RequestContext, parent: number, name: string, mode: number, umask: number): Promise<EntryOut> {
    return this.names.mkdir(ctx, parent, name, mode, umask);
  }
  unlink(ctx: RequestContext, parent: number, name: string): Promise<void> {
    return this.names.unlink(ctx, parent, name);
  }
  rmdir(ctx: RequestContext, parent: number, name: string): Promise<void> {
    return this.names.rmdir(ctx, parent, name);
  }
  rename(ctx: RequestContext, parent: number, name: string, newParent: number, newName: string, flags: number): Promise<void> {
    return this.names.rename(ctx, parent, name, newParent, newName, flags);
  }
  link(ctx: RequestContext, ino: number, newParent: number, newName: string): Promise<EntryOut> {
    return this.names.link(ctx, ino, newParent, newName);
  }
  opendir(ctx: RequestContext, ino: number, flags: number): Promise<OpenOut> {
    return this.names.opendir(ctx, ino, flags);
  }
  readdir(ctx: RequestContext, ino: number, fh: number, offset: number, plus: boolean): Promise<DirEntryPlus[]> {
    return this.names.readdir(ctx, ino, fh, offset, plus);
  }
  releasedir(ctx: RequestContext, ino: number, fh: number): Promise<void> {
    return this.names.releasedir(ctx, ino, fh);
  }
  async fsyncdir(_ctx: RequestContext, _ino: number, _fh: number, _datasync: boolean): Promise<void> {
    // Every namespace change is committed to the metaserver before it is answered.
  }

  // ---- file contents (vfs-files.ts) ----

  open(ctx: RequestContext, ino: number, flags: number): Promise<OpenOut> {
    return this.files.open(ctx, ino, flags);
  }
  create(ctx: RequestContext, parent: number, name: string, mode: number, flags: number, umask: number): Promise<CreateOut> {
    return this.files.create(ctx, parent, name, mode, flags, umask);
  }
  read(ctx: RequestContext, ino: number, fh: number, offset: number, target: Buffer): Promise<number> {
    return this.files.read(ctx, ino, fh, offset, target);
  }
  write(ctx: RequestContext, ino: number, fh: number, offset: number, data: Buffer, flags: number): Promise<number> {
    return this.files.write(ctx, ino, fh, offset, data, flags);
  }
  flush(ctx: RequestContext, ino: number, fh: number): Promise<void> {
    return this.files.flush(ctx, ino, fh);
  }
  release(ctx: RequestContext, ino: number, fh: number, flags: number): Promise<void> {
    return this.files.release(ctx, ino, fh, flags);
  }
  fsync(ctx: RequestContext, ino: number, fh: number, datasync: boolean): Promise<void> {
    return this.files.fsync(ctx, ino, fh, datasync);
  }
  fallocate(ctx: RequestContext, ino: number, fh: number, offset: number, length: number, mode: number): Promise<void> {
    return this.files.fallocate(ctx, ino, fh, offset, length, mode);
  }
  lseek(ctx: RequestContext, ino: number, fh: number, offset: number, whence: number): Promise<number> {
    return this.files.lseek(ctx, ino, fh, offset, whence);
  }
  copyFileRange(
    ctx: RequestContext, inoIn: number, fhIn: number, offIn: number,
    inoOut: number, fhOut: number, offOut: number, length: number, flags: number,
  ): Promise<number> {
    return this.files.copyFileRange(ctx, inoIn, fhIn, offIn, inoOut, fhOut, offOut, length, flags);
  }

  // ---- xattrs (vfs-xattr.ts) ----

  setxattr(ctx: RequestContext, ino: number, name: string, value: Buffer, flags: number): Promise<void> {
    return this.xattr.setxattr(ctx, ino, name, value, flags);
  }
  getxattr(ctx: RequestContext, ino: number, name: string): Promise<Buffer> {
    return this.xattr.getxattr(ctx, ino, name);
  }
  listxattr(ctx: RequestContext, ino: number): Promise<string[]> {
    return this.xattr.listxattr(ctx, ino);
  }
  removexattr(ctx: RequestContext, ino: number, name: string): Promise<void> {
    return this.xattr.removexattr(ctx, ino, name);
  }

  // ---- whole mount ----

  /** A path inside the mount -> its inode (admin commands; the kernel never sends paths). */
  async resolvePath(path: string): Promise<Inode> {
    let ino = ROOT_INO;
    for (const name of path.split('/').filter((p) => p !== '')) ino = await this.names.lookupIno(ino, name);
    return this.core.table.view((await this.core.table.get(ino)).inode);
  }

  /** Pushes every open file's data and attributes (shutdown, `tierfs cache flush`). */
  async flushAll(): Promise<void> {
    await this.core.appends.settleAll();
    await this.core.data.flushAll();
    for (const state of this.core.table.open.openInodes()) await this.core.commitDirty(state.ino);
  }

  stats(): { openHandles: number; openInodes: number; kernelInodes: number; openDirs: number; unreleasedOrphans: number } {
    const t = this.core.table;
    return {
      openHandles: t.open.openHandles(),
      openInodes: t.open.openInodes().length,
      kernelInodes: t.kernelInodes(),
      openDirs: this.names.openDirs(),
      unreleasedOrphans: this.core.pendingOrphans.size,
    };
  }
}
