// The VFS with the recycle bin (issue 16): unlink of a file's last name and rmdir move the
// node into /.trash instead (metaserver/trash-bin.ts names the entry after when and from
// where); a file with other names is unlinked as before (its data stays reachable). /.trash is
// left out of the root's listing and only root can look it up. The mount empties expired
// entries every `sweepMs`: unlinked with releaseIno, their objects go with the metaserver's
// deletion queue. Quota usage follows through QuotaVfs (a trashed file counts under / only).
import type { DirEntryPlus, EntryOut, NegativeEntryOut, RequestContext } from '../fuse/types.js';
import { RENAME_NOREPLACE } from '../fuse/types.js';
import { ROOT_INO, S_IFDIR, S_IFMT, S_IFREG, type MetaClient } from '../metaserver/meta-client.js';
import { StatusCode, TierfsError } from '../common/status.js';
import {
  TRASH_NAME, TRASH_NAME_XATTR, expired, listTrash, purgeTrashEntry, trashDirIno, trashEntryName,
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
    const meta = this.core.meta;
    let ino = await trashDirIno(meta);
    if (ino === null) {
      try {
        ino = (await meta.createNode(ROOT_INO, TRASH_NAME, { mode: S_IFDIR | 0o700, uid: 0, gid: 0, exclusive: true })).ino;
      } catch (err) {
        if (!(err instanceof TierfsError && err.code === StatusCode.EXISTS)) throw err;
        ino = (await meta.lookup(ROOT_INO, TRASH_NAME)).ino;
      }
      this.core.table.attrs.delete(ROOT_INO);
    }
    this.trashIno = ino;
    return ino;
  }

  private inTrash(parent: number): boolean {
    return this.trashIno !== null && parent === this.trashIno;
  }

  override async lookup(ctx: RequestContext, parent: number, name: string): Promise<EntryOut | NegativeEntryOut> {
    if (parent === ROOT_INO && name === TRASH_NAME && ctx.uid !== 0) throw posix(E.ENOENT, 'the recycle bin is reserved to root');
    return super.lookup(ctx, parent, name);
  }

  override async readdir(ctx: RequestContext, ino: number, fh: number, offset: number, plus: boolean): Promise<DirEntryPlus[]> {
    const out = await super.readdir(ctx, ino, fh, offset, plus);
    return ino === ROOT_INO ? out.filter((e) => e.name !== TRASH_NAME) : out;
  }

  override async unlink(ctx: RequestContext, parent: number, name: string): Promise<void> {
    if (this.inTrash(parent)) return super.unlink(ctx, parent, name);
    const ino = await this.names.lookupIno(parent, name);
    if ((await this.core.table.get(ino)).inode.nlink > 1) return super.unlink(ctx, parent, name);
    await this.moveToTrash(ctx, parent, name, ino);
  }

  override async rmdir(ctx: RequestContext, parent: number, name: string): Promise<void> {
    if (this.inTrash(parent) || (parent === ROOT_INO && name === TRASH_NAME)) return super.rmdir(ctx, parent, name);
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
      const { trashIno, entries } = await listTrash(meta);
      if (trashIno === null) return 0;
      this.trashIno = trashIno;
      const gone = expired(entries, this.trash.days, nowMs);
      const quotas = this.quota.active ? await this.quota.quotasAbove(trashIno) : [];
      const sizes = quotas.length > 0 ? new Map((await meta.batchGetAttr(gone.map((e) => e.ino))).map((a) => [a.ino, a.size])) : new Map<number, number>();
      for (const e of gone) {
        try {
          await purgeTrashEntry(meta, trashIno, e);
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
