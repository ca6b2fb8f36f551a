// The VFS with directory quotas (issue 16): every operation that adds bytes or names under a
// directory is checked against the quotas on its path first (EDQUOT), and what it changed is
// accounted after it succeeded (quota-tracker.ts sends the deltas to the metaservers). It
// wraps the operations of Vfs without changing them; with no quota set it costs nothing.
//
// Usage counts names: each name is one inode, a regular file's name also its size. A file's
// size change counts under every directory holding one of its names.
import type { AttrOut, CreateOut, EntryOut, RequestContext, SetAttrIn, StatfsOut } from '../fuse/types.js';
import { FALLOC_FL_KEEP_SIZE, RENAME_EXCHANGE } from '../fuse/types.js';
import { ROOT_INO, S_IFDIR, S_IFMT, S_IFREG, type MetaClient } from '../metaserver/meta-client.js';
import { summarizeTree, namesIn } from '../metaserver/tree-summary.js';
import { errnoOf, E } from './errors.js';
import type { FileData } from './file-data.js';
import { QuotaTracker, type QuotaChange, type QuotaStore } from './quota-tracker.js';
import { Vfs, type VfsOptions } from './vfs.js';

interface Usage {
  bytes: number;
  inodes: number;
}

export class QuotaVfs extends Vfs {
  readonly quota: QuotaTracker;
  /** Size of a file as accounted (with the growth reserved by operations running on it). */
  private readonly accounted = new Map<number, { size: number; running: number }>();

  constructor(meta: MetaClient, data: FileData, opts: VfsOptions, store: QuotaStore) {
    super(meta, data, opts);
    this.quota = new QuotaTracker(store, (dir) => this.parentDir(dir), { logger: this.core.log });
  }

  private async parentDir(dir: number): Promise<number> {
    return (await this.core.table.get(dir)).inode.parents[0] ?? ROOT_INO;
  }

  /** What one name of the inode counts: a directory its whole tree (moved between quotas). */
  private async usageOfName(ino: number, withTree: boolean): Promise<Usage> {
    const inode = (await this.core.table.get(ino)).inode;
    const type = inode.mode & S_IFMT;
    if (type === S_IFREG) return { bytes: await this.core.table.currentSize(ino), inodes: 1 };
    if (type !== S_IFDIR || !withTree) return { bytes: 0, inodes: 1 };
    const tree = await summarizeTree(this.core.meta, ino);
    return { bytes: tree.bytes, inodes: namesIn(tree) + 1 };
  }

  private async maybeLookup(parent: number, name: string): Promise<number | null> {
    try {
      return await this.names.lookupIno(parent, name);
    } catch (err) {
      if (errnoOf(err) === E.ENOENT) return null;
      throw err;
    }
  }

  /** Checks `changes`, runs the operation, accounts them. */
  private async guarded<T>(changes: QuotaChange[], op: () => Promise<T>): Promise<T> {
    this.quota.check(changes);
    const out = await op();
    this.quota.account(changes);
    return out;
  }

  /** A new name in `parent` (create, mkdir, mknod, symlink). */
  private async newName<T>(parent: number, op: () => Promise<T>): Promise<T> {
    if (!this.quota.active) return op();
    const quotas = await this.quota.quotasAbove(parent);
    return quotas.length === 0 ? op() : this.guarded([{ quotas, bytes: 0, inodes: 1 }], op);
  }

  /**
   * An operation that may change a file's size to at most `newEnd` (null: it cannot grow it).
   * The growth is reserved before the operation, so concurrent writes to one file (the kernel
   * sends several at once) are checked against each other; when the last of them is done the
   * account is settled to the size the file really has.
   */
  private async sizeChange<T>(ino: number, newEnd: number | null, op: () => Promise<T>): Promise<T> {
    if (!this.quota.active) return op();
    const { table } = this.core;
    const quotas = await this.quota.quotasOver((await table.get(ino)).inode.parents);
    if (quotas.length === 0) return op();
    const before = await table.currentSize(ino);
    const acc = this.accounted.get(ino) ?? { size: before, running: 0 };
    const growth = newEnd !== null ? Math.max(0, newEnd - acc.size) : 0;
    if (growth > 0) this.quota.check([{ quotas, bytes: growth, inodes: 0 }]);
    acc.size += growth;
    acc.running++;
    this.accounted.set(ino, acc);
    this.quota.account([{ quotas, bytes: growth, inodes: 0 }]);
    try {
      return await op();
    } finally {
      if (--acc.running === 0) {
        const after = await table.currentSize(ino).catch(() => acc.size);
        this.quota.account([{ quotas, bytes: after - acc.size, inodes: 0 }]);
        acc.size = after;
        if (acc.running === 0) this.accounted.delete(ino);
      }
    }
  }

  // ---- names ----

  override async create(ctx: RequestContext, parent: number, name: string, mode: number, flags: number, umask: number): Promise<CreateOut> {
    // Opening an existing file through create adds no name.
    if (this.quota.active && (await this.maybeLookup(parent, name)) !== null) return super.create(ctx, parent, name, mode, flags, umask);
    return this.newName(parent, () => super.create(ctx, parent, name, mode, flags, umask));
  }
  override mkdir(ctx: RequestContext, parent: number, name: string, mode: number, umask: number): Promise<EntryOut> {
    return this.newName(parent, () => super.mkdir(ctx, parent, name, mode, umask));
  }
  override mknod(ctx: RequestContext, parent: number, name: string, mode: number, rdev: number, umask: number): Promise<EntryOut> {
    return this.newName(parent, () => super.mknod(ctx, parent, name, mode, rdev, umask));
  }
  override symlink(ctx: RequestContext, parent: number, name: string, target: string): Promise<EntryOut> {
    return this.newName(parent, () => super.symlink(ctx, parent, name, target));
  }

  override async link(ctx: RequestContext, ino: number, newParent: number, newName: string): Promise<EntryOut> {
    if (!this.quota.active) return super.link(ctx, ino, newParent, newName);
    const quotas = await this.quota.quotasAbove(newParent);
    if (quotas.length === 0) return super.link(ctx, ino, newParent, newName);
    const u = await this.usageOfName(ino, false);
    return this.guarded([{ quotas, ...u }], () => super.link(ctx, ino, newParent, newName));
  }

  override async unlink(ctx: RequestContext, parent: number, name: string): Promise<void> {
    if (!this.quota.active) return super.unlink(ctx, parent, name);
    const quotas = await this.quota.quotasAbove(parent);
    if (quotas.length === 0) return super.unlink(ctx, parent, name);
    const ino = await this.names.lookupIno(parent, name);
    const u = await this.usageOfName(ino, false);
    await super.unlink(ctx, parent, name);
    this.quota.account([{ quotas, bytes: -u.bytes, inodes: -u.inodes }]);
  }

  override async rmdir(ctx: RequestContext, parent: number, name: string): Promise<void> {
    if (!this.quota.active) return super.rmdir(ctx, parent, name);
    const quotas = await this.quota.quotasAbove(parent);
    await super.rmdir(ctx, parent, name);
    this.quota.account([{ quotas, bytes: 0, inodes: -1 }]);
  }

  override async rename(ctx: RequestContext, parent: number, name: string, newParent: number, newName: string, flags: number): Promise<void> {
    if (!this.quota.active) return super.rename(ctx, parent, name, newParent, newName, flags);
    const [src, dst] = await Promise.all([this.quota.quotasAbove(parent), this.quota.quotasAbove(newParent)]);
    if (src.length === 0 && dst.length === 0) return super.rename(ctx, parent, name, newParent, newName, flags);
    // Only quotas on one side of the move see a change; a tree is counted only then.
    const sameSides = src.length === dst.length && src.every((q) => dst.some((d) => d.ino === q.ino));
    const ino = await this.names.lookupIno(parent, name);
    const moved = await this.usageOfName(ino, !sameSides);
    const other = await this.maybeLookup(newParent, newName);
    const changes: QuotaChange[] = [
      { quotas: src, bytes: -moved.bytes, inodes: -moved.inodes },
      { quotas: dst, bytes: moved.bytes, inodes: moved.inodes },
    ];
    if (other !== null && other !== ino) {
      // The destination name's inode leaves it (replaced), or moves to the source (exchange).
      const exchange = (flags & RENAME_EXCHANGE) !== 0;
      const gone = await this.usageOfName(other, exchange && !sameSides);
      changes.push({ quotas: dst, bytes: -gone.bytes, inodes: -gone.inodes });
      if (exchange) changes.push({ quotas: src, bytes: gone.bytes, inodes: gone.inodes });
    }
    return this.guarded(changes, () => super.rename(ctx, parent, name, newParent, newName, flags));
  }

  // ---- sizes ----

  override write(ctx: RequestContext, ino: number, fh: number, offset: number, data: Buffer, flags: number): Promise<number> {
    return this.sizeChange(ino, offset + data.length, () => super.write(ctx, ino, fh, offset, data, flags));
  }

  override setattr(ctx: RequestContext, ino: number, changes: SetAttrIn): Promise<AttrOut> {
    if (changes.size === undefined) return super.setattr(ctx, ino, changes);
    return this.sizeChange(ino, changes.size, () => super.setattr(ctx, ino, changes));
  }

  override fallocate(ctx: RequestContext, ino: number, fh: number, offset: number, length: number, mode: number): Promise<void> {
    const end = mode & FALLOC_FL_KEEP_SIZE ? null : offset + length;
    return this.sizeChange(ino, end, () => super.fallocate(ctx, ino, fh, offset, length, mode));
  }

  override async copyFileRange(
    ctx: RequestContext, inoIn: number, fhIn: number, offIn: number,
    inoOut: number, fhOut: number, offOut: number, length: number, flags: number,
  ): Promise<number> {
    const copy = () => super.copyFileRange(ctx, inoIn, fhIn, offIn, inoOut, fhOut, offOut, length, flags);
    if (!this.quota.active) return copy();
    const srcSize = await this.core.table.currentSize(inoIn);
    return this.sizeChange(inoOut, offOut + Math.max(0, Math.min(length, srcSize - offIn)), copy);
  }

  // ---- df inside a quota directory ----

  override async statfs(ctx: RequestContext, ino: number): Promise<StatfsOut> {
    const out = await super.statfs(ctx, ino);
    if (!this.quota.active) return out;
    const inode = (await this.core.table.get(ino)).inode;
    const dir = (inode.mode & S_IFMT) === S_IFDIR ? ino : (inode.parents[0] ?? ROOT_INO);
    const q = await this.quota.nearest(dir);
    if (!q) return out;
    const used = this.quota.usage(q);
    if (q.maxBytes > 0) {
      out.blocks = Math.ceil(q.maxBytes / out.bsize);
      out.bfree = out.bavail = Math.max(0, out.blocks - Math.ceil(Math.max(0, used.bytes) / out.bsize));
    }
    if (q.maxInodes > 0) {
      out.files = q.maxInodes;
      out.ffree = Math.max(0, q.maxInodes - used.inodes);
    }
    return out;
  }

  override stats(): ReturnType<Vfs['stats']> & { quotas: number } {
    return { ...super.stats(), quotas: this.quota.count };
  }

  override async flushAll(): Promise<void> {
    await super.flushAll();
    await this.quota.send();
  }
}
