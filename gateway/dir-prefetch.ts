// Lookups that keep missing in one directory are a scan (a stat of every file, `ls -l`
// without readdirplus, find, rsync): instead of one metaserver round trip per name, the
// directory is listed once with its inodes and the gateway's caches are filled, as a
// readdirplus would. A name the listing did not have still goes to the metaserver, so a
// prefetch can only make a lookup faster, never answer it differently than a lookup now would.
import type { MetaClient } from '../metaserver/meta-client.js';
import type { CompleteDirs } from './complete-dirs.js';
import type { InodeTable } from './inode-table.js';

export interface DirPrefetchOptions {
  /** Misses in one directory within `windowMs` that make it a scan. */
  threshold: number;
  windowMs: number;
  /** The most entries one prefetch reads (a huge directory is prefetched in part). */
  maxEntries: number;
  pageSize: number;
  /**
   * How long prefetched names and attributes stay in the gateway's caches. Longer than the
   * 1 s of looked-up ones: they wait for a scan to reach them, which on a loaded machine
   * takes more than a second for thousands of names (then the whole listing was wasted).
   */
  ttlMs: number;
}

const DEFAULTS: DirPrefetchOptions = { threshold: 16, windowMs: 1000, maxEntries: 8192, pageSize: 1024, ttlMs: 10_000 };
/** Directories whose misses are being counted at once (bounded: a wide tree walk has many). */
const MAX_TRACKED = 1024;

export class DirPrefetcher {
  private readonly misses = new Map<number, { count: number; since: number }>();
  private readonly running = new Map<number, Promise<void>>();
  private readonly finished = new Map<number, number>();
  /** Where the next prefetch of a directory continues, when the last one stopped at maxEntries. */
  private readonly resumeAfter = new Map<number, string>();
  private readonly opts: DirPrefetchOptions;
  prefetches = 0;

  constructor(
    private readonly meta: MetaClient,
    private readonly table: InodeTable,
    opts: Partial<DirPrefetchOptions> = {},
    /** Told of every whole listing, so names the directory lacks are answered locally. */
    private readonly complete?: CompleteDirs,
  ) {
    this.opts = { ...DEFAULTS, ...opts };
  }

  /**
   * A lookup in parent missed the gateway's caches. Resolves once a prefetch of parent that
   * is running (or that this miss started) has ended, so the caller can look in the caches
   * again; at once otherwise.
   */
  onMiss(parent: number, now = Date.now()): Promise<void> | undefined {
    if (!this.meta.batchGetInodes) return undefined;
    const running = this.running.get(parent);
    if (running) return running;
    // Just prefetched: this name was not in the listing (or past maxEntries); ask for it alone.
    const last = this.finished.get(parent);
    if (last !== undefined && now - last < this.opts.windowMs) return undefined;
    let m = this.misses.get(parent);
    if (!m || now - m.since > this.opts.windowMs) {
      if (!m && this.misses.size >= MAX_TRACKED) this.forgetOld(now);
      m = { count: 0, since: now };
      this.misses.set(parent, m);
    }
    if (++m.count < this.opts.threshold) return undefined;
    this.misses.delete(parent);
    this.prefetches++;
    const p = this.prefetch(parent)
      .catch(() => undefined) // a failed prefetch only means the lookups go one by one
      .finally(() => {
        this.running.delete(parent);
        this.finished.set(parent, Date.now());
        if (this.finished.size > MAX_TRACKED) this.finished.delete(this.finished.keys().next().value!);
      });
    this.running.set(parent, p);
    return p;
  }

  private forgetOld(now: number): void {
    for (const [ino, m] of this.misses) if (now - m.since > this.opts.windowMs) this.misses.delete(ino);
    if (this.misses.size >= MAX_TRACKED) this.misses.clear();
  }

  private async prefetch(parent: number): Promise<void> {
    const batchGetInodes = this.meta.batchGetInodes!.bind(this.meta);
    // The directory's version before the listing: a change during it leaves a gap the
    // CompleteDirs chain never closes, so the listing then serves only until it expires.
    const since = Date.now();
    let last = this.resumeAfter.get(parent) ?? '';
    this.resumeAfter.delete(parent);
    // Only a listing from the first name can show the directory complete. (0 when not sent:
    // a server that does not count never closes the chain, so that is safe.)
    const version = this.complete && last === '' ? ((await this.meta.getInode(parent)).entriesVersion ?? 0) : undefined;
    const names: string[] = [];
    for (let seen = 0; ; ) {
      if (seen >= this.opts.maxEntries) {
        // A huge directory: the scan's next misses continue the listing, not start it over.
        if (this.resumeAfter.size >= MAX_TRACKED) this.resumeAfter.clear();
        this.resumeAfter.set(parent, last);
        break;
      }
      const want = Math.min(this.opts.pageSize, this.opts.maxEntries - seen);
      const page = await this.meta.listDentries(parent, last, want);
      for (const d of page) names.push(d.name);
      if (page.length < want && version !== undefined) this.complete?.listed(parent, version, names, since);
      if (page.length === 0) break;
      const inodes = await batchGetInodes(page.map((d) => d.ino));
      const byIno = new Map(inodes.map((i) => [i.ino, i]));
      for (const d of page) {
        const inode = byIno.get(d.ino);
        // Removed between the listing and the attributes: leave it to a real lookup.
        if (!inode) continue;
        this.table.dentries.set(parent, d.name, { ino: d.ino, type: d.type }, this.opts.ttlMs);
        if (!this.table.open.isOpen(d.ino)) this.table.remember(inode, this.opts.ttlMs);
      }
      seen += page.length;
      if (page.length < this.opts.pageSize) break;
      last = page[page.length - 1]!.name;
    }
  }
}
