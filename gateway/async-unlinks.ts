// `--async-unlink` (opt-in): UNLINK is answered at once and the metaserver write follows in
// the background, the way CephFS's async dirops (`nowsync`) answer an unlink from the
// client's caps. The kernel serializes unlinks of one directory on the directory's lock for
// a whole round trip, so `rm -rf` of a big directory ran at one Raft commit per file; with
// this, unlinks queue here and go out in waves (all that queued while the previous wave was
// in flight, in one turn of the event loop, so one Batch RPC and one Raft append carry them).
//
// What is safe to answer without the metaserver: the kernel has already checked that the
// name exists (its dentry), is not a directory and that the caller may remove it, so an
// unlink can fail only when another mount changed the name meanwhile — then it is answered
// as if it ran just before that change. What it trades, and why it is opt-in:
//   - durability: an answered unlink not yet committed is lost if this mount process dies
//     (fsync of the directory, an rmdir, unmount and `tierfs cache flush` wait for them);
//   - other mounts see the name until the write commits (milliseconds, not a cache window);
//   - a write that fails anyway (no metaserver within --meta-timeout) is logged and counted
//     (`asyncUnlinks.failed` in `tierfs stats`); the name then stays.
// Order is kept where it shows: anything naming a pending (parent, name) — lookup, create,
// mkdir, link, rename — waits for it; a listing or fsyncdir of a directory waits for its
// pending unlinks (a getattr does not: the kernel asks for the directory's attributes before
// every unlink in it, and may see its times a moment old); an rmdir waits for all (its emptiness is checked at apply), so
// `rm -rf` returns only once every unlink in it is committed.
import type { FuseFilesystem, RequestContext } from '../fuse/types.js';
import type { Logger } from '../common/log.js';
import { E, errnoOf } from './errors.js';

export interface AsyncUnlinkOptions {
  /** Unlinks answered and not yet committed, at most; the next one waits (default 4096). */
  maxPending?: number;
  /** Unlinks sent in one wave, at most (default 512). */
  maxWave?: number;
  logger?: Logger;
}

interface Pending {
  ctx: RequestContext;
  parent: number;
  name: string;
  done: Promise<void>;
  settle: () => void;
}

export interface AsyncUnlinkStats {
  pending: number;
  answered: number;
  committed: number;
  failed: number;
  waves: number;
}

/** A context for work that outlives the request: the kernel's interrupt no longer applies. */
function detached(ctx: RequestContext): RequestContext {
  return { ...ctx, signal: new AbortController().signal };
}

export class AsyncUnlinks {
  private readonly queue: Pending[] = [];
  private readonly byName = new Map<string, Pending>();
  private readonly byDir = new Map<number, Set<Pending>>();
  private inFlight = false;
  /** Unlinks waiting for room under maxPending. */
  private readonly room: Array<() => void> = [];
  private readonly maxPending: number;
  private readonly maxWave: number;
  readonly counts: AsyncUnlinkStats = { pending: 0, answered: 0, committed: 0, failed: 0, waves: 0 };

  constructor(
    private readonly fs: FuseFilesystem,
    private readonly opts: AsyncUnlinkOptions = {},
  ) {
    this.maxPending = opts.maxPending ?? 4096;
    this.maxWave = opts.maxWave ?? 512;
    if (this.maxPending < 1 || this.maxWave < 1) throw new RangeError('async unlink limits must be >= 1');
  }

  private static key(parent: number, name: string): string {
    return `${parent}/${name}`;
  }

  /** Answers the unlink once queued; the write goes out with the next wave. */
  async unlink(ctx: RequestContext, parent: number, name: string): Promise<void> {
    await this.waitName(parent, name);
    while (this.counts.pending >= this.maxPending) await new Promise<void>((r) => this.room.push(r));
    let settle!: () => void;
    const done = new Promise<void>((r) => (settle = r));
    const p: Pending = { ctx: detached(ctx), parent, name, done, settle };
    this.queue.push(p);
    this.byName.set(AsyncUnlinks.key(parent, name), p);
    let dir = this.byDir.get(parent);
    if (!dir) this.byDir.set(parent, (dir = new Set()));
    dir.add(p);
    this.counts.pending++;
    this.counts.answered++;
    this.pump();
  }

  private pump(): void {
    if (this.inFlight || this.queue.length === 0) return;
    this.inFlight = true;
    const wave = this.queue.splice(0, this.maxWave);
    this.counts.waves++;
    // Started in one turn: the metaserver client sends them as one Batch per server.
    void Promise.all(wave.map((p) => this.send(p))).finally(() => {
      this.inFlight = false;
      this.pump();
    });
  }

  private async send(p: Pending): Promise<void> {
    try {
      await this.fs.unlink!(p.ctx, p.parent, p.name);
      this.counts.committed++;
    } catch (err) {
      // ENOENT: another mount removed it first, which is what we answered.
      if (errnoOf(err) === E.ENOENT) this.counts.committed++;
      else {
        this.counts.failed++;
        this.opts.logger?.warn({ parent: p.parent, name: p.name, err: String(err) }, 'an unlink answered early failed at the metaserver; the name stays');
      }
    } finally {
      const key = AsyncUnlinks.key(p.parent, p.name);
      if (this.byName.get(key) === p) this.byName.delete(key);
      const dir = this.byDir.get(p.parent);
      dir?.delete(p);
      if (dir?.size === 0) this.byDir.delete(p.parent);
      this.counts.pending--;
      p.settle();
      this.room.shift()?.();
    }
  }

  /** Waits for a pending unlink of (parent, name), if any. */
  async waitName(parent: number, name: string): Promise<void> {
    const p = this.byName.get(AsyncUnlinks.key(parent, name));
    if (p) await p.done;
  }

  /** Waits for every pending unlink in directory `dir`. */
  async waitDir(dir: number): Promise<void> {
    const set = this.byDir.get(dir);
    if (set) await Promise.all([...set].map((p) => p.done));
  }

  /** Waits until nothing is pending (rmdir, unmount, flush). */
  async drain(): Promise<void> {
    while (this.counts.pending > 0) await Promise.all([...this.byName.values()].map((p) => p.done));
  }

  /**
   * The filesystem as the kernel should see it: unlink answered early, and every operation
   * that could observe a pending unlink waiting for it first.
   */
  wrap<T extends FuseFilesystem>(fs: T): T {
    const self = this;
    const before: Partial<Record<keyof FuseFilesystem, (args: unknown[]) => Promise<void>>> = {
      lookup: ([, parent, name]) => self.waitName(parent as number, name as string),
      create: ([, parent, name]) => self.waitName(parent as number, name as string),
      mkdir: ([, parent, name]) => self.waitName(parent as number, name as string),
      mknod: ([, parent, name]) => self.waitName(parent as number, name as string),
      symlink: ([, parent, name]) => self.waitName(parent as number, name as string),
      link: ([, , parent, name]) => self.waitName(parent as number, name as string),
      rename: async ([, parent, name, newParent, newName]) => {
        await self.waitName(parent as number, name as string);
        await self.waitName(newParent as number, newName as string);
      },
      rmdir: () => self.drain(),
      opendir: ([, ino]) => self.waitDir(ino as number),
      readdir: ([, ino]) => self.waitDir(ino as number),
      fsyncdir: ([, ino]) => self.waitDir(ino as number),
    };
    return new Proxy(fs, {
      get(target, prop, receiver) {
        const value: unknown = Reflect.get(target, prop, receiver);
        if (prop === 'unlink') return (ctx: RequestContext, parent: number, name: string) => self.unlink(ctx, parent, name);
        const wait = typeof prop === 'string' ? before[prop as keyof FuseFilesystem] : undefined;
        if (!wait || typeof value !== 'function') return value;
        const method = value as (...args: unknown[]) => unknown;
        return (...args: unknown[]) => {
          // Nothing pending: straight through, no extra turn.
          if (self.counts.pending === 0) return method.apply(target, args);
          return wait(args).then(() => method.apply(target, args));
        };
      },
    });
  }
}
