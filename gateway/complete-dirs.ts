// Directories this mount knows every name of, so a lookup of a name they lack is answered
// "no such file" without a metaserver round trip. Creating a file costs the kernel's negative
// LOOKUP before its CREATE; with this, only the CREATE goes to the metaserver.
//
// A directory becomes known when this mount makes it (empty) or lists it whole. It stays
// known while every change of its names is one this mount made: the metaserver counts the
// changes of a directory's names (`entriesVersion`), and a create's reply carries the parent
// as that create left it, so version w in a reply means "w - 1 -> w was ours". The versions
// verified so far form a chain from the listing; a gap is a change by someone else.
//
// What it trades: a name another mount created is not seen here until the answer expires —
// `freshMs` after the last request whose reply closed the chain (the gateway's dentry and
// attribute caches go stale for the same time). Creating such a name still reaches the
// metaserver, which refuses it (O_EXCL) or opens the existing file.
import type { InodeAttr } from '../metaserver/meta-client.js';

interface KnownDir {
  names: Set<string>;
  /** The newest version every change up to which is accounted for. */
  base: number;
  /** Versions made by this mount's creates beyond `base`, waiting for the gap below them. */
  ours: Set<number>;
  /** Lookups are answered until then; renewed when a reply extends the chain. */
  freshUntil: number;
}

export interface CompleteDirsOptions {
  freshMs: number;
  /** Directories known at once (oldest dropped first). */
  maxDirs?: number;
  /** Names kept per directory; a bigger directory is not known. */
  maxNames?: number;
}

/** Versions of our own changes waiting for a gap to close: more means the chain will not close. */
const MAX_WAITING = 1024;

export class CompleteDirs {
  private readonly dirs = new Map<number, KnownDir>();
  private readonly maxDirs: number;
  private readonly maxNames: number;
  /** Lookups answered without the metaserver (for tests and stats). */
  answered = 0;

  constructor(private readonly opts: CompleteDirsOptions) {
    this.maxDirs = opts.maxDirs ?? 256;
    this.maxNames = opts.maxNames ?? 65_536;
  }

  /** The name does not exist: the directory is known, fresh, and lacks it. */
  absent(dir: number, name: string, now = Date.now()): boolean {
    const d = this.dirs.get(dir);
    if (!d) return false;
    if (now >= d.freshUntil) {
      // A chain with a gap never closes again; a whole one is renewed by the next create.
      if (d.ours.size > 0) this.dirs.delete(dir);
      return false;
    }
    if (d.names.has(name)) return false;
    this.answered++;
    return true;
  }

  /** A directory this mount just made (empty), `since` when the request was sent. */
  made(dir: InodeAttr, since: number): void {
    if (this.opts.freshMs <= 0) return;
    this.set(dir.ino, { names: new Set(), base: dir.entriesVersion ?? 0, ours: new Set(), freshUntil: since + this.opts.freshMs });
  }

  /** A whole listing of `dir`, taken after reading the directory at `version` at time `since`. */
  listed(dir: number, version: number, names: Iterable<string>, since: number): void {
    if (this.opts.freshMs <= 0) return;
    const set = new Set(names);
    if (set.size > this.maxNames) return this.forget(dir);
    this.set(dir, { names: set, base: version, ours: new Set(), freshUntil: since + this.opts.freshMs });
  }

  /**
   * This mount created `name` in `dir` with a request sent at `since`; `after` is the directory
   * as the create left it (absent when the reply did not carry it).
   */
  created(dir: number, name: string, after: InodeAttr | undefined, since: number): void {
    const d = this.dirs.get(dir);
    if (!d) return;
    d.names.add(name);
    if (d.names.size > this.maxNames) return this.forget(dir);
    this.ours(dir, d, after, since, 1);
  }

  /**
   * The last `steps` versions up to `after`'s are this mount's change, made by a request sent
   * at `since`; without `after` (a reply that does not carry the directory) the chain stays open.
   */
  private ours(dir: number, d: KnownDir, after: InodeAttr | undefined, since: number, steps: number): void {
    const w = after?.entriesVersion;
    if (w === undefined) {
      d.ours.add(Number.MAX_SAFE_INTEGER); // an unknown version of ours: the chain stays open
      return;
    }
    for (let v = w - steps + 1; v <= w; v++) if (v > d.base) d.ours.add(v);
    while (d.ours.delete(d.base + 1)) d.base++;
    // Every change up to this one is accounted for: the names were exact when it was applied,
    // which is after `since`.
    if (w <= d.base) d.freshUntil = Math.max(d.freshUntil, since + this.opts.freshMs);
    else if (d.ours.size > MAX_WAITING) this.forget(dir);
  }

  /** A create that met an existing name: it was in the directory all along. */
  existed(dir: number, name: string): void {
    if (!this.dirs.get(dir)?.names.has(name)) this.forget(dir);
  }

  /** This mount removed or renamed away `name`; `after` as in created (absent: the chain waits). */
  removed(dir: number, name: string, after?: InodeAttr, since = 0): void {
    const d = this.dirs.get(dir);
    if (!d) return;
    d.names.delete(name);
    this.ours(dir, d, after, since, 1);
  }

  /** This mount added `name` (link, rename); `after` as in created (absent: the chain waits). */
  addedUnverified(dir: number, name: string, after?: InodeAttr, since = 0): void {
    const d = this.dirs.get(dir);
    if (!d) return;
    d.names.add(name);
    if (d.names.size > this.maxNames) return this.forget(dir);
    this.ours(dir, d, after, since, 1);
  }

  /** A rename within `dir` (two name changes, so two versions); `after` as in created. */
  renamedWithin(dir: number, from: string, to: string, after: InodeAttr | undefined, since: number): void {
    const d = this.dirs.get(dir);
    if (!d) return;
    d.names.delete(from);
    d.names.add(to);
    this.ours(dir, d, after, since, 2);
  }

  forget(dir: number): void {
    this.dirs.delete(dir);
  }

  get size(): number {
    return this.dirs.size;
  }

  private set(dir: number, d: KnownDir): void {
    this.dirs.delete(dir);
    if (this.dirs.size >= this.maxDirs) this.dirs.delete(this.dirs.keys().next().value!);
    this.dirs.set(dir, d);
  }
}
