// Names: lookup, create (with POSIX ownership), link, unlink, rename and directory listings,
// all by (parent inode, name). The kernel keeps its own dentries coherent for changes made
// through this mount; what it cannot know (a rename that replaced an inode it caches) we
// tell it through the notifier.
import type { DirEntryPlus, EntryOut, NegativeEntryOut, OpenOut, RequestContext } from '../fuse/types.js';
import { RENAME_EXCHANGE, RENAME_NOREPLACE } from '../fuse/types.js';
import {
  ROOT_INO, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG,
  type Dentry, type Inode, type InodeAttr,
} from '../metaserver/meta-client.js';
import { CompleteDirs } from './complete-dirs.js';
import { DirPrefetcher } from './dir-prefetch.js';
import { E, errnoOf, posix } from './errors.js';
import { VfsCore } from './vfs-core.js';
import { isMetaOutage } from './inode-table.js';

/** Set-group-ID bit: a directory with it hands its gid (and, to subdirectories, the bit) down. */
const S_ISGID = 0o2000;
/** Entries answered per readdir call (the server asks again for the rest). */
const READDIR_BATCH = 256;

interface DirHandle {
  ino: number;
  /** Entries listed so far, "." and ".." first; cookie of entry i is i + 1. */
  entries: Array<{ name: string; ino: number; type: number; inode?: InodeAttr; fetchedMs?: number }>;
  /** Name to continue the metaserver listing after; null once the listing is complete. */
  next: string | null;
}

export class VfsNamespace {
  private readonly dirs = new Map<number, DirHandle>();
  private nextDirFh = 1;

  readonly prefetcher: DirPrefetcher;
  /** Directories whose every name this mount knows: a name they lack needs no metaserver call. */
  readonly complete: CompleteDirs;

  constructor(private readonly core: VfsCore) {
    this.complete = new CompleteDirs({ freshMs: core.gatewayCacheMs });
    // Prefetched entries wait for their lookup up to 10 s, never longer than the kernel may cache them.
    this.prefetcher = new DirPrefetcher(core.meta, core.table, { ttlMs: Math.min(10_000, core.attrTimeoutMs, core.entryTimeoutMs) }, this.complete);
  }

  // ---- lookup ----

  /** The child's inode number, from the gateway's dentry cache or the metaserver. */
  async lookupIno(parent: number, name: string): Promise<number> {
    VfsCore.checkName(name);
    const { table } = this.core;
    const cached = table.dentries.get(parent, name);
    if (cached) return cached.ino;
    if (this.complete.absent(parent, name)) throw posix(E.ENOENT, `${JSON.stringify(name)} not found in ${parent}`);
    const prefetch = this.prefetcher.onMiss(parent);
    if (prefetch) {
      await prefetch;
      const filled = table.dentries.get(parent, name);
      if (filled) return filled.ino;
    }
    const stale = table.dentries.stale(parent, name);
    if (table.metaDown && stale) return stale.ino;
    let d: Dentry;
    try {
      d = await this.core.meta.lookup(parent, name);
    } catch (err) {
      if (!isMetaOutage(err)) throw err;
      table.metaDown = true;
      if (stale) return stale.ino; // a name this mount has seen, while no metaserver answers
      throw err;
    }
    table.metaDown = false;
    this.rememberDentry(d);
    return d.ino;
  }

  private rememberDentry(d: Dentry): void {
    const { table } = this.core;
    table.dentries.set(d.parent, d.name, { ino: d.ino, type: d.type });
    // Attributes fetched with the name are as fresh as a getInode now would be.
    if (d.inode) table.remember(d.inode);
  }

  async lookup(_ctx: RequestContext, parent: number, name: string): Promise<EntryOut | NegativeEntryOut> {
    let ino: number;
    try {
      if (name === '.') ino = parent;
      else if (name === '..') ino = (await this.core.table.get(parent)).inode.parents[0] ?? ROOT_INO;
      else ino = await this.lookupIno(parent, name);
    } catch (err) {
      if (errnoOf(err) === E.ENOENT && this.core.negativeTimeoutMs > 0) return { ino: 0, entryTimeoutMs: this.core.negativeTimeoutMs };
      throw err;
    }
    return this.core.entryOut((await this.core.table.get(ino)).inode);
  }

  // ---- creating nodes ----

  /**
   * POSIX ownership of a new node: the caller's uid, and the caller's gid unless the parent
   * directory has the setgid bit (then the parent's gid, and a new directory inherits the bit).
   */
  private async ownerOf(ctx: RequestContext | null, parent: number, mode: number): Promise<{ uid: number; gid: number; mode: number }> {
    const owner = {
      uid: ctx?.uid ?? this.core.opts.uid ?? process.getuid?.() ?? 0,
      gid: ctx?.gid ?? this.core.opts.gid ?? process.getgid?.() ?? 0,
      mode,
    };
    const dir = (await this.core.table.get(parent)).inode;
    if ((dir.mode & S_IFMT) !== S_IFDIR) throw posix(E.ENOTDIR, `inode ${parent} is not a directory`);
    if (dir.mode & S_ISGID) {
      owner.gid = dir.gid;
      if ((mode & S_IFMT) === S_IFDIR) owner.mode |= S_ISGID;
    }
    return owner;
  }

  /** Creates a node; `created` is false when a non-exclusive create met an existing file. */
  async createNode(
    ctx: RequestContext | null,
    parent: number,
    name: string,
    mode: number,
    extra: { rdev?: number; symlink?: string; exclusive: boolean },
  ): Promise<{ inode: Inode; created: boolean }> {
    this.core.assertWritable();
    VfsCore.checkName(name);
    const { meta, table, data } = this.core;
    const opts = { ...(await this.ownerOf(ctx, parent, mode)), ...extra };
    const since = Date.now();
    let result: { inode: Inode; parent?: Inode; created?: boolean };
    try {
      result = meta.createNodeWithParent ? await meta.createNodeWithParent(parent, name, opts) : { inode: await meta.createNode(parent, name, opts) };
    } catch (err) {
      if (errnoOf(err) === E.EEXIST) this.complete.existed(parent, name);
      throw err;
    }
    const inode = result.inode;
    // Without the flag from the metaserver, a node younger than our request is ours.
    const created = result.created ?? true;
    if (created) {
      this.complete.created(parent, name, result.parent, since);
      if ((inode.mode & S_IFMT) === S_IFDIR) this.complete.made(inode, since);
    } else {
      this.complete.existed(parent, name);
    }
    if (created && (inode.mode & S_IFMT) === S_IFREG) data.markNew?.(inode.ino);
    table.dentries.set(parent, name, { ino: inode.ino, type: inode.mode & S_IFMT });
    table.remember(inode);
    // A new node has no xattrs: spares the security.capability lookup the first write triggers.
    if (created) table.xattrNames.set(inode.ino, new Set());
    if (result.parent) table.remember(result.parent);
    else table.attrs.delete(parent);
    return { inode, created };
  }

  async mkdir(ctx: RequestContext, parent: number, name: string, mode: number, umask: number): Promise<EntryOut> {
    const { inode } = await this.createNode(ctx, parent, name, S_IFDIR | (mode & ~umask & 0o7777), { exclusive: true });
    return this.core.entryOut(inode);
  }

  async mknod(ctx: RequestContext, parent: number, name: string, mode: number, rdev: number, umask: number): Promise<EntryOut> {
    const type = mode & S_IFMT || S_IFREG;
    const { inode } = await this.createNode(ctx, parent, name, type | (mode & ~umask & 0o7777), { rdev, exclusive: true });
    return this.core.entryOut(inode);
  }

  async symlink(ctx: RequestContext, parent: number, name: string, target: string): Promise<EntryOut> {
    const { inode } = await this.createNode(ctx, parent, name, S_IFLNK | 0o777, { symlink: target, exclusive: true });
    return this.core.entryOut(inode);
  }

  async readlink(_ctx: RequestContext, ino: number): Promise<string> {
    const inode = (await this.core.table.get(ino)).inode;
    if ((inode.mode & S_IFMT) !== S_IFLNK) throw posix(E.EINVAL, `inode ${ino} is not a symlink`);
    return inode.symlink;
  }

  // ---- removing and moving names ----

  async unlink(_ctx: RequestContext, parent: number, name: string): Promise<void> {
    this.core.assertWritable();
    const { meta, table } = this.core;
    // A file no handle of this mount has open goes to the trash in the unlink's own Raft
    // entry (one round trip); an open one waits for its last release and the kernel's FORGET.
    // An expired cache entry serves as the guess: the metaserver releases only the inode the
    // name really points to.
    const known = table.dentries.stale(parent, name)?.ino;
    const releaseIno = known !== undefined && !table.open.isOpen(known) && !this.core.deletesOrphanData() ? known : undefined;
    const opts = releaseIno !== undefined ? { releaseIno } : undefined;
    const since = Date.now();
    const { inode: after, parent: dir } = meta.unlinkWithParent ? await meta.unlinkWithParent(parent, name, opts) : { inode: await meta.unlink(parent, name, opts) };
    this.complete.removed(parent, name, dir, since);
    table.dentries.delete(parent, name);
    this.core.changedDir(parent, dir);
    if (after.nlink === 0 && after.ino === releaseIno) {
      table.attrs.delete(after.ino);
      await this.core.data.invalidate(after.ino);
      return;
    }
    table.remember(after);
    if (after.nlink === 0) await this.core.unlinked(after.ino);
  }

  async rmdir(_ctx: RequestContext, parent: number, name: string): Promise<void> {
    this.core.assertWritable();
    const { meta, table } = this.core;
    const cached = table.dentries.get(parent, name);
    await meta.rmdir(parent, name);
    this.complete.removed(parent, name);
    table.dentries.delete(parent, name);
    if (cached) {
      table.attrs.delete(cached.ino);
      this.complete.forget(cached.ino);
    }
    table.attrs.delete(parent);
  }

  async link(_ctx: RequestContext, ino: number, newParent: number, newName: string): Promise<EntryOut> {
    this.core.assertWritable();
    VfsCore.checkName(newName);
    const { meta, table } = this.core;
    const inode = await meta.link(ino, newParent, newName);
    this.complete.addedUnverified(newParent, newName);
    table.dentries.set(newParent, newName, { ino, type: inode.mode & S_IFMT });
    table.remember(inode);
    table.attrs.delete(newParent);
    // The reply carries the new nlink: the kernel's one inode shows it through every name.
    return this.core.entryOut(inode);
  }

  async rename(_ctx: RequestContext, parent: number, name: string, newParent: number, newName: string, flags: number): Promise<void> {
    this.core.assertWritable();
    VfsCore.checkName(newName);
    const { meta, table } = this.core;
    if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) throw posix(E.EINVAL, `unknown rename flags ${flags}`);
    if (flags & RENAME_EXCHANGE) {
      if (flags & RENAME_NOREPLACE) throw posix(E.EINVAL, 'RENAME_EXCHANGE with RENAME_NOREPLACE');
      if (!meta.exchange) throw posix(E.EINVAL, 'this metaserver cannot exchange two names atomically');
      const [a, b] = await Promise.all([this.lookupIno(parent, name), this.lookupIno(newParent, newName)]);
      await meta.exchange(parent, name, newParent, newName);
      // Both names stay; the directories changed in ways no reply counts for us.
      this.complete.addedUnverified(parent, name);
      this.complete.addedUnverified(newParent, newName);
      table.dentries.delete(parent, name);
      table.dentries.delete(newParent, newName);
      for (const ino of [parent, newParent]) table.attrs.delete(ino);
      // Both moved inodes changed ctime (and a directory its "..").
      await Promise.all([table.refresh(a), table.refresh(b)]);
      return;
    }
    if (flags & RENAME_NOREPLACE) {
      // Checked here, then renamed: a name another mount creates in between is replaced.
      const exists = await this.lookupIno(newParent, newName).then(() => true, (err: unknown) => {
        if (errnoOf(err) === E.ENOENT) return false;
        throw err;
      });
      if (exists) throw posix(E.EEXIST, `${newName} exists (RENAME_NOREPLACE)`);
    }
    // The metaserver checks the source name itself and says which inode moved: no lookup first.
    const since = Date.now();
    const result = await meta.rename(parent, name, newParent, newName);
    const ino = result.ino ?? (await meta.lookup(newParent, newName)).ino;
    // The destination's entry is the later one (the same directory twice within one).
    const srcAfter = result.parents?.[0]?.ino === parent ? result.parents[0] : undefined;
    const dstAfter = result.parents?.[1]?.ino === newParent ? result.parents[1] : undefined;
    if (parent === newParent) this.complete.renamedWithin(parent, name, newName, dstAfter, since);
    else {
      this.complete.removed(parent, name, srcAfter, since);
      this.complete.addedUnverified(newParent, newName, dstAfter, since);
    }
    table.dentries.delete(parent, name);
    // The new name as this rename left it: an unlink of it then knows its inode (releaseIno).
    if (result.type !== undefined) table.dentries.set(newParent, newName, { ino, type: result.type & S_IFMT });
    else table.dentries.delete(newParent, newName);
    this.core.changedDir(parent, parent === newParent ? dstAfter : srcAfter);
    this.core.changedDir(newParent, dstAfter);
    await table.refresh(ino);
    const replaced = result.replaced;
    if (replaced) {
      table.attrs.delete(replaced.ino);
      const open = table.open.inode(replaced.ino);
      if (open) open.inode = { ...open.inode, nlink: replaced.nlink };
      // The kernel dropped its dentry; its inode (reachable through other names or handles)
      // must not keep the old nlink for an attr timeout.
      await this.core.invalidateKernel(replaced.ino, false);
      if (replaced.nlink === 0 && (replaced.type & S_IFMT) !== S_IFDIR) await this.core.unlinked(replaced.ino);
    }
  }

  // ---- directories ----

  async opendir(_ctx: RequestContext, ino: number, _flags: number): Promise<OpenOut> {
    const dir = (await this.core.table.get(ino)).inode;
    if ((dir.mode & S_IFMT) !== S_IFDIR) throw posix(E.ENOTDIR, `inode ${ino} is not a directory`);
    const fh = this.nextDirFh++;
    this.dirs.set(fh, this.freshListing(ino, dir));
    return { fh };
  }

  private freshListing(ino: number, dir: Inode): DirHandle {
    return {
      ino,
      entries: [
        { name: '.', ino, type: S_IFDIR },
        { name: '..', ino: dir.parents[0] ?? ROOT_INO, type: S_IFDIR },
      ],
      next: '',
    };
  }

  async readdir(_ctx: RequestContext, ino: number, fh: number, offset: number, plus: boolean): Promise<DirEntryPlus[]> {
    let h = this.dirs.get(fh);
    if (!h || h.ino !== ino) throw posix(E.EBADF, `directory handle ${fh} is not open`);
    if (offset === 0 && h.entries.length > 2) {
      // rewinddir: list again, so names created since opendir show up.
      h = this.freshListing(ino, (await this.core.table.get(ino)).inode);
      this.dirs.set(fh, h);
    }
    const page = this.core.opts.dirPageSize ?? 1024;
    while (h.next !== null && h.entries.length < offset + READDIR_BATCH) {
      const batch = await this.core.meta.listDentries(ino, h.next, page);
      // READDIRPLUS: the attributes of the whole page in one call, not one per reply buffer.
      const attrs = plus && batch.length > 0 ? new Map((await this.core.meta.batchGetAttr(batch.map((d) => d.ino))).map((a) => [a.ino, a])) : null;
      const fetchedMs = Date.now();
      for (const d of batch) {
        h.entries.push({ name: d.name, ino: d.ino, type: d.type, inode: d.inode ?? attrs?.get(d.ino), fetchedMs });
        this.core.table.dentries.set(ino, d.name, { ino: d.ino, type: d.type });
      }
      h.next = batch.length < page ? null : batch[batch.length - 1]!.name;
    }
    const slice = h.entries.slice(offset, offset + READDIR_BATCH);
    const out: DirEntryPlus[] = slice.map((e, i) => ({ name: e.name, ino: e.ino, type: e.type, offset: offset + i + 1 }));
    if (plus) await this.fillEntries(slice, out);
    return out;
  }

  /** READDIRPLUS: attributes for every entry but "." and "..", in one batched metaserver call. */
  private async fillEntries(slice: DirHandle['entries'], out: DirEntryPlus[]): Promise<void> {
    const { table, meta } = this.core;
    const attrs = new Map<number, InodeAttr>();
    const missing: number[] = [];
    const now = Date.now();
    for (const e of slice) {
      if (e.name === '.' || e.name === '..') continue;
      // Attributes read with the listing serve as long as the gateway's own cache would keep them.
      const listed = e.inode && now - (e.fetchedMs ?? 0) <= table.attrs.ttlMs ? e.inode : undefined;
      const hit = listed ?? table.attrs.get(e.ino)?.inode;
      if (hit) attrs.set(e.ino, hit);
      else missing.push(e.ino);
    }
    if (missing.length > 0) for (const a of await meta.batchGetAttr(missing)) attrs.set(a.ino, a);
    for (const [i, e] of slice.entries()) {
      const a = attrs.get(e.ino);
      // A name removed since it was listed has no attributes: sent without (not counted).
      if (!a) continue;
      table.rememberXattrNames(a);
      out[i]!.entry = await this.core.entryOut(a, true);
    }
  }

  async releasedir(_ctx: RequestContext, _ino: number, fh: number): Promise<void> {
    this.dirs.delete(fh);
  }

  openDirs(): number {
    return this.dirs.size;
  }
}
