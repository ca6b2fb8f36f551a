// Close-to-open across mounts, exactly. The metaserver bumps an inode's data version at every
// change of its data or size (slices appended, size set, an O_APPEND run placed), in the same
// Raft entry. A mount remembers, per inode, the version its caches of the file hold — the
// kernel's page cache and the data path's slice map (block caches are immutable objects, so
// they never go stale) — and at every open compares it with the metaserver's:
//
// - equal: nothing changed since the caches were filled, the kernel keeps its pages
//   (FOPEN_KEEP_CACHE);
// - different: the slice map and the kernel's attributes are dropped, the open answers
//   without KEEP_CACHE (the kernel drops the pages), and the caches are known to hold the
//   fresh version from then on.
//
// The mount's own commits return the inode after them: a version that follows the one the
// caches held by exactly one is this mount's own change (the caches already hold it), any
// other means another mount committed in between, and the next open drops the caches. Size
// and mtime could not tell that: an equal size and an mtime within its resolution pass for
// "unchanged". A server that sends no version (older) gets the old rule: size and mtime.
import type { Inode } from '../metaserver/meta-client.js';
import { untimed } from './op-stats.js';

type CommitReporter = (ino: number, inode: Inode) => void;
const reporters = new WeakMap<object, CommitReporter>();

/**
 * The data path's slice store calls this with what a commit of this mount returned (its
 * `meta` is the MetaClient it was made from): an inode there tells the VFS of that client
 * which version its own commit made. Nothing happens when no VFS listens.
 */
export function reportOwnCommit(meta: object, ino: number, result: unknown): void {
  if (result && typeof result === 'object' && (result as Inode).ino === ino) reporters.get(untimed(meta))?.(ino, result as Inode);
}

/**
 * The VFS built on `meta` hears of the commits the data path makes through it. Keyed by the
 * client under op-stats' counting proxy: the mount builds the VFS on the proxy and the data
 * path on the client itself, and a miss here would pass every own commit for another
 * mount's, dropping the kernel's pages of each file at its next open.
 */
export function onOwnCommits(meta: object, fn: CommitReporter): void {
  reporters.set(untimed(meta), fn);
}

/**
 * Per inode, the data version each cache of this mount holds: the kernel's pages (dropped
 * only at open, or when the kernel sees the size change) and the data path's slice map
 * (cheap to drop and refetch, so dropped as soon as a newer version shows up anywhere: a
 * file kept open while another mount appends reads the new bytes, not holes).
 */
export class DataVersions {
  private readonly pages = new Map<number, number>();
  private readonly slices = new Map<number, number>();
  /** Own versions past a gap in the pages' sequence, per inode (see own). */
  private readonly ahead = new Map<number, Set<number>>();

  /** Whether the kernel's pages of `ino` hold version `v` (an open may keep them). */
  pagesHold(ino: number, v: number): boolean {
    return this.pages.get(ino) === v;
  }

  /** Both caches were just emptied (or hold nothing yet): they fill from version `v` on. */
  reset(ino: number, v: number | undefined): void {
    this.ahead.delete(ino);
    if (v === undefined) {
      this.pages.delete(ino);
      this.slices.delete(ino);
    } else {
      this.pages.set(ino, v);
      this.slices.set(ino, v);
    }
  }

  /**
   * This mount's own commit left the inode at version `v`: a cache that held v - 1 holds v
   * now; one that held anything else misses another mount's change. Returns false when the
   * slice map must be dropped (it is then taken to refill from v); the pages stay unknown
   * until the next open.
   */
  own(ino: number, v: number | undefined): boolean {
    if (v === undefined) return true;
    const p = this.pages.get(ino);
    if (p !== undefined && v > p) {
      // Replies of concurrent flushes arrive out of order: a version past a gap waits until
      // the gap is filled by our own replies. A gap never filled is another mount's commit,
      // and the pages then stay behind (the next open drops them).
      const ahead = this.ahead.get(ino) ?? new Set<number>();
      ahead.add(v);
      let held = p;
      while (ahead.delete(held + 1)) held++;
      this.pages.set(ino, held);
      if (ahead.size === 0) this.ahead.delete(ino);
      else if (ahead.size <= 1024) this.ahead.set(ino, ahead);
      else {
        this.ahead.delete(ino); // a gap that never closes: give up on the pages
        this.pages.delete(ino);
      }
    }
    const s = this.slices.get(ino);
    if (s === v || s === v - 1 || (s !== undefined && s > v)) {
      if (s === v - 1) this.slices.set(ino, v);
      return true;
    }
    this.slices.set(ino, v);
    return false;
  }

  /**
   * Attributes fetched from the metaserver: false when the slice map must be dropped (it then
   * refills from v). Inodes this mount keeps no versions for (listed, never opened) stay
   * unrecorded: their slice map, if any, is dropped each time, which costs nothing.
   */
  seen(ino: number, v: number | undefined): boolean {
    if (v === undefined) return true;
    const s = this.slices.get(ino);
    if (s === undefined) return false;
    if (s >= v) return true;
    this.slices.set(ino, v);
    return false;
  }

  /** The kernel forgot the inode (its pages went with it). */
  forget(ino: number): void {
    this.ahead.delete(ino);
    this.pages.delete(ino);
    this.slices.delete(ino);
  }
}

/** What revalidation needs of the VFS (vfs-core.ts VfsCore). */
export interface RevalidationParts {
  table: {
    attrs: { get(ino: number): { inode: Inode } | undefined; delete(ino: number): void };
    open: { isOpen(ino: number): boolean };
    remember(inode: Inode): void;
  };
  meta: { getInode(ino: number): Promise<Inode> };
  data: { invalidate(ino: number): void | Promise<void> };
  versions: DataVersions;
  invalidateKernel(ino: number, pages: boolean): Promise<void>;
}

/**
 * Close-to-open at an open: the inode fresh from the metaserver (every open, also of a file
 * this mount holds open already: a reader kept open must not hide a change from later
 * opens); when another mount changed the data since this mount's caches were filled, the
 * slice map and the kernel's attributes go. Returns whether the kernel may keep its pages
 * (FOPEN_KEEP_CACHE); when not, the kernel drops them as it opens.
 */
export async function revalidateForOpen(core: RevalidationParts, ino: number): Promise<boolean> {
  const { table, meta, data, versions } = core;
  const before = table.attrs.get(ino)?.inode;
  if (before && before.dataVersion === undefined && table.open.isOpen(ino)) return true; // an older server: first opens only, as before
  table.attrs.delete(ino);
  const fresh = await meta.getInode(ino);
  table.remember(fresh);
  const v = fresh.dataVersion;
  const unchanged = v !== undefined ? versions.pagesHold(ino, v) : !!before && before.mtimeMs === fresh.mtimeMs && before.size === fresh.size;
  if (!unchanged) {
    await data.invalidate(ino);
    await core.invalidateKernel(ino, false);
    versions.reset(ino, v);
  }
  return unchanged;
}
