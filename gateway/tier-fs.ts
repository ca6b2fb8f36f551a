// The POSIX layer of the mount: path-based operations over the MetaClient (namespace and
// attributes) and FileData (contents). It knows nothing of FUSE; fuse-adapter.ts only
// translates. Failures are thrown as PosixError/TierfsError carrying the errno.
import { silentLogger, type Logger } from '../common/log.js';
import {
  MAX_NAME_BYTES, ROOT_INO, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG,
  type Inode, type InodeAttr, type MetaClient, type SetAttrChanges,
} from '../metaserver/meta-client.js';
import { AttrCache, DentryCache, type CachedInode } from './caches.js';
import { E, posix } from './errors.js';
import type { FileData } from './file-data.js';
import { OpenFileTable, type DirtyAttrs, type FileHandle } from './open-files.js';

export interface TierFsOptions {
  attrTimeoutMs?: number;
  entryTimeoutMs?: number;
  readOnly?: boolean;
  /** Owner of new nodes when the caller is unknown (the stock fuse-native addon passes none). */
  uid?: number;
  gid?: number;
  dirPageSize?: number;
  /** Delete an orphan's objects right after releasing it (else the metaserver's trash job does). */
  deleteOrphanData?: boolean;
  logger?: Logger;
}

/** Who creates a node: the calling process's effective uid/gid (from fuse_get_context). */
export interface NodeOwner {
  uid: number;
  gid: number;
}

/** Set-group-ID bit: a directory with it hands its gid (and, to subdirectories, the bit) down. */
const S_ISGID = 0o2000;

export interface DirEntry {
  name: string;
  ino: number;
  mode: number;
}

export interface FsStatfs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  namemax: number;
}

/** libfuse's name for a file unlinked while open: `.fuse_hidden%08x%08x`. */
const HIDDEN_NAME = /^\.fuse_hidden[0-9a-f]{16}$/;
const STATFS_BLOCK = 1 << 20;
const STATFS_TOTAL_BYTES = 2 ** 50;
const STATFS_TOTAL_INODES = 2 ** 32 - 1;

export class TierFileSystem {
  private readonly dentries: DentryCache;
  private readonly attrs: AttrCache;
  readonly open = new OpenFileTable();
  /** `${parent}/${hiddenName}` -> ino, for files libfuse hid when they were unlinked while open. */
  private readonly hidden = new Map<string, number>();
  private readonly log: Logger;
  private readonly uid: number;
  private readonly gid: number;

  constructor(
    private readonly meta: MetaClient,
    private readonly data: FileData,
    private readonly opts: TierFsOptions = {},
  ) {
    this.dentries = new DentryCache(opts.entryTimeoutMs ?? 1000);
    this.attrs = new AttrCache(opts.attrTimeoutMs ?? 1000);
    this.log = opts.logger ?? silentLogger;
    this.uid = opts.uid ?? process.getuid?.() ?? 0;
    this.gid = opts.gid ?? process.getgid?.() ?? 0;
  }

  // ---- path resolution and caches ----

  private static split(path: string): string[] {
    return path.split('/').filter((p) => p !== '');
  }

  private static checkName(name: string): void {
    if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw posix(E.ENAMETOOLONG, `name longer than ${MAX_NAME_BYTES} bytes: ${name.slice(0, 40)}...`);
  }

  private async lookupChild(parent: number, name: string): Promise<number> {
    TierFileSystem.checkName(name);
    const hiddenIno = this.hidden.get(`${parent}/${name}`);
    if (hiddenIno !== undefined) return hiddenIno;
    const cached = this.dentries.get(parent, name);
    if (cached) return cached.ino;
    const d = await this.meta.lookup(parent, name);
    this.dentries.set(parent, name, { ino: d.ino, type: d.type });
    // Attributes fetched with the name are as fresh as a getInode now would be; an entry
    // already cached is kept (it may carry xattr names).
    if (d.inode && !this.attrs.get(d.ino)) this.attrs.set(d.ino, { inode: d.inode });
    return d.ino;
  }

  async resolve(path: string): Promise<number> {
    let ino = ROOT_INO;
    for (const name of TierFileSystem.split(path)) ino = await this.lookupChild(ino, name);
    return ino;
  }

  private async resolveParent(path: string): Promise<{ parent: number; name: string }> {
    const parts = TierFileSystem.split(path);
    const name = parts.pop();
    if (name === undefined) throw posix(E.EBUSY, 'the root has no parent');
    TierFileSystem.checkName(name);
    let parent = ROOT_INO;
    for (const p of parts) parent = await this.lookupChild(parent, p);
    return { parent, name };
  }

  private async cached(ino: number): Promise<CachedInode> {
    const hit = this.attrs.get(ino);
    if (hit) return hit;
    const entry: CachedInode = { inode: await this.meta.getInode(ino) };
    this.attrs.set(ino, entry);
    return entry;
  }

  private remember(inode: Inode): void {
    const prev = this.attrs.get(inode.ino);
    this.attrs.set(inode.ino, { inode, xattrNames: prev?.xattrNames });
    const open = this.open.inode(inode.ino);
    if (open) open.inode = inode;
  }

  /** Drops cached attributes; an open inode's snapshot is refetched (it must stay usable). */
  private async invalidate(ino: number): Promise<void> {
    this.attrs.delete(ino);
    if (this.open.isOpen(ino)) this.remember(await this.meta.getInode(ino));
  }

  /** Attributes as this mount sees them: the metaserver's, with uncommitted writes on top. */
  private withDirty(inode: Inode): Inode {
    const dirty = this.open.inode(inode.ino)?.dirty;
    return dirty ? { ...inode, size: dirty.size, mtimeMs: dirty.mtimeMs, ctimeMs: dirty.ctimeMs } : inode;
  }

  private assertWritable(): void {
    if (this.opts.readOnly) throw posix(E.EROFS, 'the mount is read-only');
  }

  private now(): number {
    return Date.now();
  }

  // ---- attributes ----

  async getattr(path: string): Promise<Inode> {
    const ino = await this.resolve(path);
    return this.withDirty((await this.cached(ino)).inode);
  }

  async fgetattr(fh: number): Promise<Inode> {
    const h = this.open.handle(fh);
    return this.withDirty(this.open.inode(h.ino)!.inode);
  }

  private async setAttr(ino: number, changes: SetAttrChanges): Promise<Inode> {
    this.assertWritable();
    const inode = await this.meta.setAttr(ino, { ctimeMs: this.now(), ...changes });
    this.remember(inode);
    return inode;
  }

  async chmod(path: string, mode: number): Promise<void> {
    await this.setAttr(await this.resolve(path), { mode: mode & 0o7777 });
  }

  async chown(path: string, uid: number | undefined, gid: number | undefined): Promise<void> {
    const ino = await this.resolve(path);
    await this.setAttr(ino, { ...(uid !== undefined ? { uid } : {}), ...(gid !== undefined ? { gid } : {}) });
  }

  /** Sets atime and/or mtime (undefined = leave that one alone, as UTIME_OMIT); ctime always moves. */
  async utimens(path: string, atimeMs: number | undefined, mtimeMs: number | undefined): Promise<void> {
    const ino = await this.resolve(path);
    const dirty = this.open.inode(ino)?.dirty;
    if (dirty && mtimeMs !== undefined) dirty.mtimeMs = mtimeMs;
    await this.setAttr(ino, { ...(atimeMs !== undefined ? { atimeMs } : {}), ...(mtimeMs !== undefined ? { mtimeMs } : {}) });
  }

  private async currentSize(ino: number): Promise<number> {
    const open = this.open.inode(ino);
    if (open) return open.dirty?.size ?? open.inode.size;
    return (await this.cached(ino)).inode.size;
  }

  private async truncateIno(ino: number, size: number): Promise<void> {
    this.assertWritable();
    const inode = (await this.cached(ino)).inode;
    if ((inode.mode & S_IFMT) === S_IFDIR) throw posix(E.EISDIR, 'cannot truncate a directory');
    if ((inode.mode & S_IFMT) !== S_IFREG) throw posix(E.EINVAL, 'can only truncate regular files');
    const oldSize = await this.currentSize(ino);
    await this.data.truncate(ino, oldSize, size);
    const now = this.now();
    const dirty = this.open.inode(ino)?.dirty;
    if (dirty) Object.assign(dirty, { size, mtimeMs: now, ctimeMs: now });
    await this.setAttr(ino, { size, mtimeMs: now, ctimeMs: now });
  }

  async truncate(path: string, size: number): Promise<void> {
    await this.truncateIno(await this.resolve(path), size);
  }

  async ftruncate(fh: number, size: number): Promise<void> {
    await this.truncateIno(this.open.handle(fh).ino, size);
  }

  async access(path: string, _mode: number): Promise<void> {
    // Permission bits are checked by the kernel (default_permissions); here only existence.
    await this.resolve(path);
  }

  async statfs(): Promise<FsStatfs> {
    const usage = await this.meta.usage();
    const blocks = Math.floor(STATFS_TOTAL_BYTES / STATFS_BLOCK);
    const used = Math.ceil(usage.usedBytes / STATFS_BLOCK);
    const free = Math.max(0, blocks - used);
    const ffree = Math.max(0, STATFS_TOTAL_INODES - usage.inodes);
    return { bsize: STATFS_BLOCK, frsize: STATFS_BLOCK, blocks, bfree: free, bavail: free, files: STATFS_TOTAL_INODES, ffree, favail: ffree, namemax: MAX_NAME_BYTES };
  }

  // ---- directories ----

  async readdir(path: string): Promise<DirEntry[]> {
    const ino = await this.resolve(path);
    const dir = (await this.cached(ino)).inode;
    if ((dir.mode & S_IFMT) !== S_IFDIR) throw posix(E.ENOTDIR, `${path} is not a directory`);
    const out: DirEntry[] = [
      { name: '.', ino, mode: S_IFDIR },
      { name: '..', ino: dir.parents[0] ?? ROOT_INO, mode: S_IFDIR },
    ];
    const page = this.opts.dirPageSize ?? 1024;
    for (let last = ''; ; ) {
      const batch = await this.meta.listDentries(ino, last, page);
      for (const d of batch) {
        out.push({ name: d.name, ino: d.ino, mode: d.type });
        this.dentries.set(ino, d.name, { ino: d.ino, type: d.type });
      }
      if (batch.length < page) break;
      last = batch[batch.length - 1]!.name;
    }
    return out;
  }

  /**
   * POSIX ownership of a new node: the caller's uid, and the caller's gid unless the parent
   * directory has the setgid bit (then the parent's gid, and a new directory inherits the bit).
   */
  private async ownerOf(parent: number, mode: number, caller: NodeOwner | undefined): Promise<{ uid: number; gid: number; mode: number }> {
    const owner = { uid: caller?.uid ?? this.uid, gid: caller?.gid ?? this.gid, mode };
    const dir = (await this.cached(parent)).inode;
    if (dir.mode & S_ISGID) {
      owner.gid = dir.gid;
      if ((mode & S_IFMT) === S_IFDIR) owner.mode |= S_ISGID;
    }
    return owner;
  }

  private async createNode(
    path: string,
    mode: number,
    extra: { rdev?: number; symlink?: string; exclusive: boolean },
    caller?: NodeOwner,
  ): Promise<Inode> {
    this.assertWritable();
    const { parent, name } = await this.resolveParent(path);
    const owner = await this.ownerOf(parent, mode, caller);
    const opts = { ...owner, ...extra };
    const created = this.meta.createNodeWithParent
      ? await this.meta.createNodeWithParent(parent, name, opts)
      : { inode: await this.meta.createNode(parent, name, opts) };
    const inode = created.inode;
    if (created.created === true && (inode.mode & S_IFMT) === S_IFREG) this.data.markNew?.(inode.ino);
    this.dentries.set(parent, name, { ino: inode.ino, type: inode.mode & S_IFMT });
    this.remember(inode);
    // A new node has no xattrs: spares the security.capability lookup the first write
    // triggers. (A non-exclusive create that met a file another mount created a moment
    // before may hide that file's xattrs from this mount for one attr timeout.)
    const entry = this.attrs.get(inode.ino);
    if (entry) entry.xattrNames ??= new Set();
    // The parent as the create left it (new times, nlink) when the metaserver returned it.
    if (created.parent) this.remember(created.parent);
    else this.attrs.delete(parent);
    return inode;
  }

  async mkdir(path: string, mode: number, caller?: NodeOwner): Promise<void> {
    await this.createNode(path, S_IFDIR | (mode & 0o7777), { exclusive: true }, caller);
  }

  async mknod(path: string, mode: number, rdev: number, caller?: NodeOwner): Promise<void> {
    const type = mode & S_IFMT || S_IFREG;
    await this.createNode(path, type | (mode & 0o7777), { rdev, exclusive: true }, caller);
  }

  async symlink(target: string, path: string, caller?: NodeOwner): Promise<void> {
    await this.createNode(path, S_IFLNK | 0o777, { symlink: target, exclusive: true }, caller);
  }

  async readlink(path: string): Promise<string> {
    const inode = (await this.cached(await this.resolve(path))).inode;
    if ((inode.mode & S_IFMT) !== S_IFLNK) throw posix(E.EINVAL, `${path} is not a symlink`);
    return inode.symlink;
  }

  async rmdir(path: string): Promise<void> {
    this.assertWritable();
    const { parent, name } = await this.resolveParent(path);
    const ino = await this.lookupChild(parent, name);
    await this.meta.rmdir(parent, name);
    this.dentries.delete(parent, name);
    this.attrs.delete(ino);
    this.attrs.delete(parent);
  }

  async unlink(path: string): Promise<void> {
    this.assertWritable();
    const { parent, name } = await this.resolveParent(path);
    const key = `${parent}/${name}`;
    const hiddenIno = this.hidden.get(key);
    if (hiddenIno !== undefined) {
      // libfuse removes the hidden name after the last release; the inode is gone already
      // unless some handle reopened it meanwhile.
      this.hidden.delete(key);
      this.open.inode(hiddenIno)?.hiddenKeys.delete(key);
      await this.releaseIfOrphan(hiddenIno);
      return;
    }
    const after = await this.meta.unlink(parent, name);
    this.dentries.delete(parent, name);
    this.attrs.delete(parent);
    this.remember(after);
    if (after.nlink === 0) await this.releaseIfOrphan(after.ino);
  }

  async link(src: string, dst: string): Promise<void> {
    this.assertWritable();
    const ino = await this.resolve(src);
    const { parent, name } = await this.resolveParent(dst);
    const inode = await this.meta.link(ino, parent, name);
    this.dentries.set(parent, name, { ino, type: inode.mode & S_IFMT });
    this.remember(inode);
    this.attrs.delete(parent);
  }

  async rename(src: string, dst: string): Promise<void> {
    this.assertWritable();
    const from = await this.resolveParent(src);
    const to = await this.resolveParent(dst);
    const ino = await this.lookupChild(from.parent, from.name);
    const hiddenKey = `${to.parent}/${to.name}`;
    if (HIDDEN_NAME.test(to.name) && this.open.isOpen(ino) && !this.hidden.has(`${from.parent}/${from.name}`)) {
      // libfuse hides a file unlinked (or replaced) while open by renaming it; we unlink it
      // in the metaserver and keep it reachable under the hidden name only on this mount.
      const after = await this.meta.unlink(from.parent, from.name);
      this.dentries.delete(from.parent, from.name);
      this.attrs.delete(from.parent);
      this.remember(after);
      this.hidden.set(hiddenKey, ino);
      this.open.inode(ino)!.hiddenKeys.add(hiddenKey);
      return;
    }
    const result = await this.meta.rename(from.parent, from.name, to.parent, to.name);
    this.dentries.delete(from.parent, from.name);
    this.dentries.delete(to.parent, to.name);
    this.attrs.delete(from.parent);
    this.attrs.delete(to.parent);
    await this.invalidate(ino);
    const replaced = result.replaced;
    if (replaced) {
      this.attrs.delete(replaced.ino);
      const open = this.open.inode(replaced.ino);
      if (open) open.inode = { ...open.inode, nlink: replaced.nlink };
      if (replaced.nlink === 0 && (replaced.type & S_IFMT) !== S_IFDIR) await this.releaseIfOrphan(replaced.ino);
    }
  }

  // ---- extended attributes ----

  private async xattrNames(ino: number): Promise<Set<string>> {
    const entry = await this.cached(ino);
    if (!entry.xattrNames) entry.xattrNames = new Set(await this.meta.listXattr(ino));
    return entry.xattrNames;
  }

  async getxattr(path: string, name: string): Promise<Buffer> {
    const ino = await this.resolve(path);
    // The kernel asks for security.capability before every write: answer from the cache.
    if (!(await this.xattrNames(ino)).has(name)) throw posix(E.ENODATA, `no attribute ${name}`);
    return this.meta.getXattr(ino, name);
  }

  async listxattr(path: string): Promise<string[]> {
    return [...(await this.xattrNames(await this.resolve(path)))];
  }

  async setxattr(path: string, name: string, value: Buffer, flags: number): Promise<void> {
    this.assertWritable();
    if (Buffer.byteLength(name) > 255) throw posix(E.ERANGE, 'attribute name longer than 255 bytes');
    const ino = await this.resolve(path);
    await this.meta.setXattr(ino, name, value, flags);
    await this.invalidate(ino);
  }

  async removexattr(path: string, name: string): Promise<void> {
    this.assertWritable();
    const ino = await this.resolve(path);
    await this.meta.removeXattr(ino, name);
    await this.invalidate(ino);
  }

  // ---- files ----

  private async openIno(ino: number, flags: number): Promise<FileHandle> {
    if ((flags & 3) !== 0) this.assertWritable();
    const state = this.open.inode(ino);
    if (state) return this.open.open(ino, flags, state.inode);
    // Close-to-open: the first open revalidates attributes against the metaserver and
    // drops cached data when another mount changed the file.
    const before = this.attrs.get(ino)?.inode;
    this.attrs.delete(ino);
    const fresh = await this.meta.getInode(ino);
    this.attrs.set(ino, { inode: fresh });
    if (!before || before.mtimeMs !== fresh.mtimeMs || before.size !== fresh.size) await this.data.invalidate(ino);
    // A concurrent open may have won the race while we waited: share its state.
    return this.open.open(ino, flags, this.open.inode(ino)?.inode ?? fresh);
  }

  async openFile(path: string, flags: number): Promise<number> {
    const ino = await this.resolve(path);
    const h = await this.openIno(ino, flags);
    return h.fh;
  }

  async create(path: string, mode: number, flags = 2, caller?: NodeOwner): Promise<number> {
    const inode = await this.createNode(path, S_IFREG | (mode & 0o7777), { exclusive: false }, caller);
    return this.open.open(inode.ino, flags, this.open.inode(inode.ino)?.inode ?? inode).fh;
  }

  async read(fh: number, offset: number, length: number): Promise<Buffer> {
    const h = this.open.handle(fh);
    const size = await this.currentSize(h.ino);
    return this.data.read(h.ino, offset, length, size);
  }

  /** read() into the FUSE reply buffer: no buffer of our own, no second copy. */
  async readInto(fh: number, offset: number, target: Buffer): Promise<number> {
    const h = this.open.handle(fh);
    const size = await this.currentSize(h.ino);
    return this.data.readInto(h.ino, offset, target, size);
  }

  async write(fh: number, offset: number, data: Buffer): Promise<number> {
    this.assertWritable();
    const h = this.open.handle(fh);
    if (!h.writable) throw posix(E.EBADF, 'file not open for writing');
    const size = await this.currentSize(h.ino);
    await this.data.write(h.ino, offset, data);
    const state = this.open.inode(h.ino)!;
    const now = this.now();
    const end = offset + data.length;
    const dirty: DirtyAttrs = state.dirty ?? { size, mtimeMs: now, ctimeMs: now };
    dirty.size = Math.max(dirty.size, end);
    dirty.mtimeMs = now;
    dirty.ctimeMs = now;
    state.dirty = dirty;
    return data.length;
  }

  /** Commits size and times written through this mount (after the data is committed). */
  private async commitDirty(ino: number): Promise<void> {
    const state = this.open.inode(ino);
    const dirty = state?.dirty;
    if (!state || !dirty) return;
    state.dirty = null;
    try {
      const inode = await this.meta.setAttr(ino, { size: dirty.size, mtimeMs: dirty.mtimeMs, ctimeMs: dirty.ctimeMs });
      this.remember(inode);
    } catch (err) {
      state.dirty ??= dirty;
      throw err;
    }
  }

  async flush(fh: number): Promise<void> {
    const h = this.open.handle(fh);
    const state = this.open.inode(h.ino);
    if (!h.writable && !state?.dirty) return;
    const dirty = state?.dirty;
    if (state && dirty && this.data.flushWithAttrs) {
      // Last slices and size/times in one metaserver write. Writes racing with this flush
      // change `dirty`; they stay dirty for the commitDirty below.
      const sent = { size: dirty.size, mtimeMs: dirty.mtimeMs, ctimeMs: dirty.ctimeMs };
      if (await this.data.flushWithAttrs(h.ino, sent)) {
        const now = state.dirty;
        if (now && now.size === sent.size && now.mtimeMs === sent.mtimeMs && now.ctimeMs === sent.ctimeMs) state.dirty = null;
        this.remember({ ...state.inode, ...sent });
      }
    } else {
      await this.data.flush(h.ino);
    }
    await this.commitDirty(h.ino);
  }

  async fsync(fh: number): Promise<void> {
    const h = this.open.handle(fh);
    await this.data.fsync(h.ino);
    await this.commitDirty(h.ino);
  }

  async release(fh: number): Promise<void> {
    const h = this.open.handle(fh);
    const state = this.open.inode(h.ino);
    if (state?.dirty && state.handles === 1) {
      // The kernel calls flush before release; this covers a flush that failed.
      await this.data.flush(h.ino).then(() => this.commitDirty(h.ino)).catch((err: unknown) =>
        this.log.warn({ ino: h.ino, err: String(err) }, 'could not commit a file at its last close'),
      );
    }
    const { last } = this.open.close(fh);
    if (!last) return;
    // Only an inode this mount unlinked (nlink 0 in its attributes, kept current by unlink,
    // link and rename) can be an orphan to release; other closes skip the GetInode. A file
    // unlinked by another mount is released there.
    const mayBeOrphan = last.hiddenKeys.size > 0 || last.inode.nlink === 0;
    for (const key of last.hiddenKeys) this.hidden.delete(key);
    if (mayBeOrphan) await this.releaseIfOrphan(h.ino);
  }

  /** At nlink 0 with no open handle the inode goes to the metaserver's trash. */
  private async releaseIfOrphan(ino: number): Promise<void> {
    if (this.open.isOpen(ino)) return;
    this.attrs.delete(ino);
    let inode: Inode;
    try {
      inode = await this.meta.getInode(ino);
    } catch {
      return; // already gone
    }
    if (inode.nlink > 0) {
      this.remember(inode);
      return;
    }
    const slices = this.opts.deleteOrphanData ? await this.meta.getSlices(ino) : null;
    await this.meta.releaseOrphan(ino);
    await this.data.invalidate(ino);
    if (slices) {
      await this.data.deleteObjects(ino, slices).catch((err: unknown) =>
        this.log.warn({ ino, err: String(err) }, 'could not delete the objects of a released inode'),
      );
    }
  }

  // ---- whole mount ----

  /** Pushes every open file's data and attributes (shutdown, `tierfs cache flush`). */
  async flushAll(): Promise<void> {
    await this.data.flushAll();
    for (const state of this.open.openInodes()) await this.commitDirty(state.ino);
  }

  stats(): { openHandles: number; openInodes: number; hiddenFiles: number } {
    return { openHandles: this.open.openHandles(), openInodes: this.open.openInodes().length, hiddenFiles: this.hidden.size };
  }

  /** Attributes in the shape stat(2) needs. */
  static statOf(inode: InodeAttr): InodeAttr & { blocks: number; blksize: number } {
    return { ...inode, blocks: Math.ceil(inode.size / 512), blksize: 65536 };
  }
}
