// What the parts of the VFS share: the metaserver and data path, the inode table, the
// options, how attributes become kernel replies (each with its own timeout), and the two
// steps several operations end with: committing a file's dirty size and releasing an orphan.
import { silentLogger, type Logger } from '../common/log.js';
import type { Attr, AttrOut, EntryOut, FuseNotifier } from '../fuse/types.js';
import { MAX_NAME_BYTES, type Inode, type InodeAttr, type MetaClient } from '../metaserver/meta-client.js';
import { AppendRuns } from './append-runs.js';
import { DataVersions, onOwnCommits } from './coherence.js';
import { E, posix } from './errors.js';
import type { FileData } from './file-data.js';
import { InodeTable } from './inode-table.js';

export interface VfsOptions {
  /** How long the kernel may trust attributes it got from us (default 30 s). */
  attrTimeoutMs?: number;
  /** How long the kernel may trust a name -> inode binding (default 30 s). */
  entryTimeoutMs?: number;
  /** How long the kernel may remember that a name does not exist (default 0: ask again). */
  negativeTimeoutMs?: number;
  /**
   * The gateway's own attribute/dentry cache behind the kernel's (default: the attr timeout,
   * at most 1 s). The kernel asks only when its copy expired, so this one stays short.
   */
  gatewayCacheMs?: number;
  readOnly?: boolean;
  /** Owner of new nodes when the request carries no caller (tests without a kernel). */
  uid?: number;
  gid?: number;
  dirPageSize?: number;
  /** Delete an orphan's objects right after releasing it (else the metaserver's trash job does). */
  deleteOrphanData?: boolean;
  logger?: Logger;
}

export const DEFAULT_CACHE_TIMEOUT_MS = 30_000;
const BLKSIZE = 65536;

export class VfsCore {
  readonly table: InodeTable;
  readonly log: Logger;
  readonly attrTimeoutMs: number;
  readonly entryTimeoutMs: number;
  readonly negativeTimeoutMs: number;
  /** How long the gateway's own caches trust what they hold. */
  readonly gatewayCacheMs: number;
  /** Set once the mount is up; null in tests without a kernel. */
  notifier: FuseNotifier | null = null;
  /**
   * The server's count of kernel references to an inode, when mounted: it counts only the
   * entry replies the kernel took, so it is the truth; without it our own set stands in.
   */
  kernelRefs: ((ino: number) => number) | null = null;
  /** The data version each of this mount's caches of a file holds (close-to-open, coherence.ts). */
  readonly versions = new DataVersions();
  /** O_APPEND writes waiting to be placed at the end of their file (append-runs.ts). */
  readonly appends: AppendRuns;

  constructor(
    readonly meta: MetaClient,
    readonly data: FileData,
    readonly opts: VfsOptions = {},
  ) {
    this.attrTimeoutMs = opts.attrTimeoutMs ?? DEFAULT_CACHE_TIMEOUT_MS;
    this.entryTimeoutMs = opts.entryTimeoutMs ?? DEFAULT_CACHE_TIMEOUT_MS;
    this.negativeTimeoutMs = opts.negativeTimeoutMs ?? 0;
    this.gatewayCacheMs = opts.gatewayCacheMs ?? Math.min(this.attrTimeoutMs, 1000);
    this.table = new InodeTable(meta, this.gatewayCacheMs);
    this.log = opts.logger ?? silentLogger;
    this.appends = new AppendRuns(this);
    this.table.listener = {
      remembered: (inode) => {
        // Another mount's change: the slice map goes (cheap), the pages wait for the next open.
        if (!this.versions.seen(inode.ino, inode.dataVersion)) this.dropSlices(inode.ino);
      },
      forgotten: (ino) => this.versions.forget(ino),
    };
    onOwnCommits(meta, (ino, inode) => this.ownCommit(ino, inode));
  }

  /** The inode after a commit of this mount's (data path, size, append). */
  ownCommit(ino: number, inode: Inode): void {
    if (!this.versions.own(ino, inode.dataVersion)) this.dropSlices(ino);
    this.table.remember(inode);
  }

  private dropSlices(ino: number): void {
    void Promise.resolve(this.data.invalidate(ino)).catch((err: unknown) => this.log.debug({ ino, err: String(err) }, 'slice cache invalidation failed'));
  }

  assertWritable(): void {
    if (this.opts.readOnly) throw posix(E.EROFS, 'the mount is read-only');
  }

  static checkName(name: string): void {
    if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw posix(E.ENAMETOOLONG, `name longer than ${MAX_NAME_BYTES} bytes: ${name.slice(0, 40)}...`);
  }

  /** struct fuse_attr of an inode as this mount sees it (dirty size/times on top). */
  async attrOf(inode: InodeAttr): Promise<Attr> {
    return (await this.attrWithBlocks(inode, false)).attr;
  }

  /**
   * `bulk`: one of many entries (readdirplus), where st_blocks may not cost a metaserver read
   * each; `exact` is false when it had to be estimated from the size.
   */
  private async attrWithBlocks(inode: InodeAttr, bulk: boolean): Promise<{ attr: Attr; exact: boolean }> {
    const dirty = this.table.open.inode(inode.ino)?.dirty;
    const a = dirty ? { ...inode, size: dirty.size, mtimeMs: dirty.mtimeMs, ctimeMs: dirty.ctimeMs } : inode;
    const { blocks, exact } = await this.blocksOf(a, bulk);
    return {
      attr: {
        ino: a.ino, size: a.size, blocks, atimeMs: a.atimeMs, mtimeMs: a.mtimeMs, ctimeMs: a.ctimeMs,
        mode: a.mode, nlink: a.nlink, uid: a.uid, gid: a.gid, rdev: a.rdev, blksize: BLKSIZE,
      },
      exact,
    };
  }

  /**
   * st_blocks from the bytes really held (a sparse file reports what was written, not its
   * size): the data path's count when it has the slices (it includes data not committed yet),
   * else the metaserver's counter in the inode, else (an inode older than the counter) the
   * slices read once, or in bulk the size rounded up as an estimate.
   */
  private async blocksOf(a: InodeAttr, bulk: boolean): Promise<{ blocks: number; exact: boolean }> {
    const bySize = { blocks: Math.ceil(a.size / 512), exact: true };
    if (a.size === 0 || (a.mode & 0o170000) !== 0o100000 || !this.data.allocatedBytes) return bySize;
    const cached = this.data.cachedAllocatedBytes?.(a.ino) ?? null;
    if (cached !== null) return { blocks: Math.ceil(cached / 512), exact: true };
    if (a.allocatedBytes !== undefined && !this.table.open.inode(a.ino)?.dirty) return { blocks: Math.ceil(a.allocatedBytes / 512), exact: true };
    if (bulk) return { ...bySize, exact: false };
    return { blocks: Math.ceil((await this.data.allocatedBytes(a.ino)) / 512), exact: true };
  }

  async attrOut(inode: InodeAttr): Promise<AttrOut> {
    return { attr: await this.attrOf(inode), attrTimeoutMs: this.attrTimeoutMs };
  }

  /** An entry reply: the kernel now holds a reference to the inode until it forgets it. */
  async entryOut(inode: InodeAttr, bulk = false): Promise<EntryOut> {
    const { attr, exact } = await this.attrWithBlocks(inode, bulk);
    this.table.hold(inode.ino);
    // Estimated st_blocks: the kernel may use the entry but asks for exact attributes at the next stat.
    return { attr, entryTimeoutMs: this.entryTimeoutMs, attrTimeoutMs: exact ? this.attrTimeoutMs : 0 };
  }

  /**
   * A directory whose names this mount just changed: its attributes as the metaserver sent
   * them after the change, else dropped. The kernel asks for them before its next permission
   * check in the directory, so an answer from here saves a round trip per unlink or rename.
   */
  changedDir(ino: number, after: Inode | undefined): void {
    if (after && after.ino === ino) this.table.remember(after);
    else this.table.attrs.delete(ino);
  }

  /** Tells the kernel to drop cached attributes (and pages, when `pages`) of an inode. */
  async invalidateKernel(ino: number, pages: boolean): Promise<void> {
    if (!this.notifier) return;
    try {
      await this.notifier.invalInode(ino, pages ? 0 : -1, 0);
    } catch (err) {
      // ENOENT: the kernel no longer has the inode, which is just as good.
      this.log.debug({ ino, err: String(err) }, 'kernel inode invalidation not delivered');
    }
  }

  /** Commits size and times written through this mount (after the data is committed). */
  async commitDirty(ino: number): Promise<void> {
    const state = this.table.open.inode(ino);
    const dirty = state?.dirty;
    if (!state || !dirty) return;
    state.dirty = null;
    try {
      // Grow only: another mount may have grown the file past what this one wrote meanwhile.
      this.ownCommit(ino, await this.meta.setAttr(ino, { size: dirty.end, sizeGrowOnly: true, mtimeMs: dirty.mtimeMs, ctimeMs: dirty.ctimeMs }));
    } catch (err) {
      state.dirty ??= dirty;
      throw err;
    }
  }

  /** The mount deletes a released inode's objects itself (so it must see the slices first). */
  deletesOrphanData(): boolean {
    return this.opts.deleteOrphanData === true;
  }

  /** Inodes this mount unlinked to nlink 0 and has not released yet. */
  readonly pendingOrphans = new Set<number>();

  /** Called when this mount's unlink/rename left an inode at nlink 0. */
  async unlinked(ino: number): Promise<void> {
    this.pendingOrphans.add(ino);
    await this.releaseIfOrphan(ino);
  }

  /**
   * An inode this mount unlinked goes to the metaserver's trash once no handle is open on
   * it and the kernel holds no reference (it may still stat an open or mapped file). Called
   * after unlink, at the last release and at FORGET; a file unlinked by another mount is
   * released there.
   */
  async releaseIfOrphan(ino: number): Promise<void> {
    if (!this.pendingOrphans.has(ino)) return;
    const held = this.kernelRefs ? this.kernelRefs(ino) > 0 : this.table.heldByKernel(ino);
    if (this.table.open.isOpen(ino) || held) return;
    this.pendingOrphans.delete(ino);
    this.table.attrs.delete(ino);
    let inode: Inode;
    try {
      inode = await this.meta.getInode(ino);
    } catch {
      return; // already gone
    }
    if (inode.nlink > 0) return; // linked again meanwhile (another mount)
    const slices = this.opts.deleteOrphanData ? await this.meta.getSlices(ino) : null;
    await this.meta.releaseOrphan(ino);
    await this.data.invalidate(ino);
    if (slices) {
      await this.data.deleteObjects(ino, slices).catch((err: unknown) =>
        this.log.warn({ ino, err: String(err) }, 'could not delete the objects of a released inode'),
      );
    }
  }
}
