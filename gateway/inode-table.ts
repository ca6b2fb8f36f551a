// What the gateway knows per inode: attributes fetched from the metaserver (a short-lived
// cache behind the kernel's own), the (parent, name) -> inode bindings it has seen, open
// state with uncommitted sizes, and which inodes the kernel holds a reference to. Every
// operation names an inode, so one inode's state is shared by all of its names (hard links).
import type { Inode, InodeAttr, MetaClient } from '../metaserver/meta-client.js';
import { AttrCache, DentryCache, XattrNameCache, type CachedInode } from './caches.js';
import { OpenFileTable } from './open-files.js';
import { StatusCode, TierfsError } from '../common/status.js';

/** No metaserver answered in time (as opposed to an answer such as NOT_FOUND). */
export function isMetaOutage(err: unknown): boolean {
  return err instanceof TierfsError && (err.code === StatusCode.UNAVAILABLE || err.code === StatusCode.TIMEOUT);
}

export class InodeTable {
  readonly attrs: AttrCache;
  readonly dentries: DentryCache;
  readonly xattrNames: XattrNameCache;
  readonly open = new OpenFileTable();
  /**
   * Inodes handed to the kernel in an entry reply and not forgotten since. The server does
   * the per-lookup counting and tells us once, when the count drops to zero.
   */
  private readonly kernelHeld = new Set<number>();
  /**
   * Set when a metadata call found no metaserver answering, cleared by the next answer.
   * Meanwhile attributes and names this mount has seen are served from the caches past
   * their TTL (stale rather than EIO, as an NFS client's attribute cache), at once.
   */
  metaDown = false;
  private probing = false;
  /** Told of attributes as they arrive and of inodes the kernel forgot (coherence.ts). */
  listener: { remembered(inode: Inode): void; forgotten(ino: number): void } | null = null;

  constructor(
    private readonly meta: MetaClient,
    cacheTtlMs: number,
  ) {
    this.attrs = new AttrCache(cacheTtlMs);
    this.dentries = new DentryCache(cacheTtlMs);
    this.xattrNames = new XattrNameCache(cacheTtlMs);
  }

  /** Attributes from the cache, else from the metaserver (and cached); during an outage, the last seen. */
  async get(ino: number): Promise<CachedInode> {
    const hit = this.attrs.get(ino);
    if (hit) return hit;
    const stale = this.attrs.stale(ino);
    if (this.metaDown && stale) {
      this.probe(ino);
      return stale;
    }
    let inode: Inode;
    try {
      inode = await this.meta.getInode(ino);
    } catch (err) {
      if (!isMetaOutage(err)) throw err;
      this.metaDown = true;
      if (stale) return stale;
      throw err;
    }
    this.metaDown = false;
    this.remember(inode);
    return this.attrs.get(ino) ?? { inode };
  }

  /** One background call at a time finds out whether the metaservers are back. */
  private probe(ino: number): void {
    if (this.probing) return;
    this.probing = true;
    this.meta.getInode(ino).then(
      (inode) => {
        this.metaDown = false;
        this.remember(inode);
      },
      () => {},
    ).finally(() => (this.probing = false));
  }

  /** Records attributes the metaserver just returned (`ttlMs`: kept longer, see DirPrefetcher). */
  remember(inode: Inode, ttlMs?: number): void {
    this.attrs.set(inode.ino, { inode }, ttlMs);
    this.rememberXattrNames(inode);
    const open = this.open.inode(inode.ino);
    if (open) open.inode = inode;
    this.listener?.remembered(inode);
  }

  /** The xattr names that came with attributes: a missing name is then answered locally. */
  rememberXattrNames(attr: InodeAttr): void {
    if (attr.xattrNames) this.xattrNames.set(attr.ino, new Set(attr.xattrNames));
  }

  /** Drops cached attributes; an open inode's snapshot is refetched (it must stay usable). */
  async refresh(ino: number): Promise<void> {
    this.attrs.delete(ino);
    if (this.open.isOpen(ino)) this.remember(await this.meta.getInode(ino));
  }

  /** Attributes as this mount sees them: the metaserver's, with uncommitted writes on top. */
  view(inode: Inode): Inode {
    const dirty = this.open.inode(inode.ino)?.dirty;
    return dirty ? { ...inode, size: dirty.size, mtimeMs: dirty.mtimeMs, ctimeMs: dirty.ctimeMs } : inode;
  }

  async currentSize(ino: number): Promise<number> {
    const open = this.open.inode(ino);
    if (open) return open.dirty?.size ?? open.inode.size;
    return (await this.get(ino)).inode.size;
  }

  hold(ino: number): void {
    this.kernelHeld.add(ino);
  }

  /** The kernel dropped its last reference: forget what only it needed. */
  forget(ino: number): void {
    this.kernelHeld.delete(ino);
    this.xattrNames.delete(ino);
    this.listener?.forgotten(ino);
    if (!this.open.isOpen(ino)) this.attrs.delete(ino);
  }

  heldByKernel(ino: number): boolean {
    return this.kernelHeld.has(ino);
  }

  kernelInodes(): number {
    return this.kernelHeld.size;
  }
}
