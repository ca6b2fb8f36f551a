// The VFS with the recycle bin (issue 16): unlink of a file's last name and rmdir move the
// node into /.trash instead (metaserver/trash-bin.ts names the entry after when and from
// where); a file with other names is unlinked as before (its data stays reachable). /.trash is
// left out of the root's listing and only root can look it up. The mount empties expired
// entries every `sweepMs`: unlinked with releaseIno, their objects go with the metaserver's
// deletion queue. Quota usage follows through QuotaVfs (a trashed file counts under / only).
//
// Without quotas, an unlink or rmdir is one metaserver write (MetaClient.removeToTrash: one
// Raft entry into the bin's shard of the name's copyset), with no lookup or getattr before it;
// the rename below is the path for quotas and names whose inode lives in another copyset.
import type { DirEntryPlus, EntryOut, NegativeEntryOut, RequestContext } from '../fuse/types.js';
import { RENAME_NOREPLACE } from '../fuse/types.js';
import { ROOT_INO, S_IFDIR, S_IFMT, S_IFREG, type MetaClient } from '../metaserver/meta-client.js';
import { StatusCode, TierfsError } from '../common/status.js';
import {
  TRASH_NAME, TRASH_NAME_XATTR, ensureTrashDir, expired, isTrashShardName, listTrash, purgeTrashEntry, trashEntryName,
} from '../metaserver/trash-bin.js';
import { E, posix } from './errors.js';
import type { FileData } from './file-data.js';
import type { QuotaStore } from './quota-tracker.js';
import { QuotaVfs } from './vfs-quota.js';
import type { VfsOptions } from './vfs.js';

export interface TrashOptions {
  /** Days an entry stays in the bin (> 0). */
  days: number;
  /** How often expired entries are purged (default 60 s). */
  sweepMs?: number;
}

export class TrashVfs extends QuotaVfs {
  private trashIno: number | null = null;
  /** /.trash and the shards of it this mount has seen: names there are removed for good. */
  private readonly bins = new Set<number>();
  private sweeper: NodeJS.Timeout | null = null;
  private sweeping = false;

  constructor(meta: MetaClient, data: FileData, opts: VfsOptions, store: QuotaStore, private readonly trash: TrashOptions) {
    super(meta, data, opts, store);
  }

  startSweeper(): void {
    this.sweeper = setInterval(() => void this.sweep(), this.trash.sweepMs ?? 60_000);
    this.sweeper.unref();
  }

  private async trashDir(): Promise<number> {
    if (this.trashIno !== null) return this.trashIno;
    const ino = await ensureTrashDir(this.core.meta);
    this.core.table.attrs.delete(ROOT_INO);
    this.setTrashIno(ino);
    return ino;
  }

  private setTrashIno(ino: number): void {
    this.trashIno = ino;
    this.bins.add(ino);
  }

  private inTrash(parent: number): boolean {
    return this.bins.has(parent);
  }

  override async lookup(ctx: RequestContext, parent: number, name: string): Promise<EntryOut | NegativeEntryOut> {
    if (parent === ROOT_INO && name === TRASH_NAME && ctx.uid !== 0) throw posix(E.ENOENT, 'the recycle bin is reserved to root');
    const out = await super.lookup(ctx, parent, name);
    // The kernel reaches a bin directory only through a lookup or a listing of its parent here.
    if ('attr' in out && parent === ROOT_INO && name === TRASH_NAME) this.setTrashIno(out.attr.ino);
    else if ('attr' in out && parent === this.trashIno && isTrashShardName(name)) this.bins.add(out.attr.ino);
    return out;
  }

  override async readdir(ctx: RequestContext, ino: number, fh: number, offset: number, plus: boolean): Promise<DirEntryPlus[]> {
    const out = await super.readdir(ctx, ino, fh, offset, plus);
    if (ino === this.trashIno) for (const e of out) if ((e.type & S_IFMT) === S_IFDIR && isTrashShardName(e.name)) this.bins.add(e.ino);
    return ino === ROOT_INO ? out.filter((e) => e.name !== TRASH_NAME) : out;
  }

  /**
   * unlink/rmdir into the bin as one metaserver write; false when that cannot be (quotas to
   * account, no such call, the inode in another copyset) and the caller renames instead.
   */
  private async removedInOneWrite(parent: number, name: string, dir: boolean): Promise<boolean> {
    const { meta, table } = this.core;
    if (!meta.removeToTrash || this.quota.active) return false;
    let res;
    const since = Date.now();
    try {
      res = await meta.removeToTrash(parent, name, dir);
    } catch (err) {
      if (err instanceof TierfsError && err.code === StatusCode.NOT_SUPPORTED) return false;
      throw err;
    }
    this.bins.add(res.binDir);
    this.names.complete.removed(parent, name, res.parent, since);
    table.dentries.delete(parent, name);
    this.core.changedDir(parent, res.parent);
    if (dir) this.names.complete.forget(res.inode.ino);
    table.remember(res.inode);
    return true;
  }

  override async unlink(ctx: RequestContext, parent: number, name: string): Promise<void> {
    if (this.inTrash(parent)) return super.unlink(ctx, parent, name);
    if (await this.removedInOneWrite(parent, name, false)) return;
    const ino = await this.names.lookupIno(parent, name);
    if ((await this.core.table.get(ino)).inode.nlink > 1) return super.unlink(ctx, parent, name);
    await this.moveToTrash(ctx, parent, name, ino);
  }

  override async rmdir(ctx: RequestContext, parent: number, name: string): Promise<void> {
    if (this.inTrash(parent) || (parent === ROOT_INO && name === TRASH_NAME)) return super.rmdir(ctx, parent, name);
    if (await this.removedInOneWrite(parent, name, true)) return;
    const ino = await this.names.lookupIno(parent, name);
    if (((await this.core.table.get(ino)).inode.mode & S_IFMT) !== S_IFDIR) throw posix(E.ENOTDIR, `${name} is not a directory`);
    if ((await this.core.meta.listDentries(ino, '', 1)).length > 0) throw posix(E.ENOTEMPTY, `${name} is not empty`);
    await this.moveToTrash(ctx, parent, name, ino);
  }

  private async moveToTrash(ctx: RequestContext, parent: number, name: string, ino: number): Promise<void> {
    const trashIno = await this.trashDir();
    const { entry, truncated } = trashEntryName(Date.now(), parent, ino, name);
    await this.rename(ctx, parent, name, trashIno, entry, RENAME_NOREPLACE);
    if (truncated) await this.core.meta.setXattr(ino, TRASH_NAME_XATTR, Buffer.from(name), 0);
  }

  /** Purges expired entries; another mount purging the same ones at once is harmless. */
  async sweep(nowMs = Date.now()): Promise<number> {
    if (this.sweeping) return 0;
    this.sweeping = true;
    let done = 0;
    try {
      const meta = this.core.meta;
      const { trashIno, bins, entries } = await listTrash(meta);
      if (trashIno === null) return 0;
      this.setTrashIno(trashIno);
      for (const b of bins) this.bins.add(b);
      const gone = expired(entries, this.trash.days, nowMs);
      const quotas = this.quota.active ? await this.quota.quotasAbove(trashIno) : [];
      const sizes = quotas.length > 0 ? new Map((await meta.batchGetAttr(gone.map((e) => e.ino))).map((a) => [a.ino, a.size])) : new Map<number, number>();
      for (const e of gone) {
        try {
          await purgeTrashEntry(meta, e);
        } catch (err) {
          this.core.log.debug({ entry: e.entry, err: String(err) }, 'trash entry not purged (purged elsewhere?)');
          continue;
        }
        const bytes = (e.type & S_IFMT) === S_IFREG ? (sizes.get(e.ino) ?? 0) : 0;
        this.quota.account([{ quotas, bytes: -bytes, inodes: -1 }]);
        done++;
      }
      return done;
    } catch (err) {
      this.core.log.warn({ err: String(err) }, 'recycle bin sweep failed; will retry');
      return done;
    } finally {
      this.sweeping = false;
    }
  }

  override async flushAll(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    await super.flushAll();
  }
}
