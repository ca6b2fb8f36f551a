// O_APPEND across mounts, the VFS's part. The kernel sends an O_APPEND write at the offset it
// believes is the end of the file — its own cached size, which another mount's appends make
// stale — so that offset is ignored: every write through an append handle joins the inode's
// pending run, in write order, and a run is committed whole by the data path, which has the
// metaserver place it at the end of the file as the Raft entry finds it (appendAtEnd). Runs
// commit at flush (close), fsync and release, when one reaches MAX_RUN_BYTES, after
// MAX_RUN_AGE_MS, and before anything on this mount looks at the file's size or bytes (read,
// getattr, lseek, truncate, a positional write, a copy), so this mount reads its own appends
// where they landed. Until then nobody sees the run: other mounts see the file as it was.
import { E, posix } from './errors.js';
import type { VfsCore } from './vfs-core.js';

/** A run is committed once it holds this much (runs of one write larger than this stay whole). */
export const MAX_RUN_BYTES = 4 << 20;
/** Or once its first byte is this old. */
export const MAX_RUN_AGE_MS = 2_000;
/** Runs of all inodes together: past this a writer commits its run before adding to it. */
const MAX_PENDING_BYTES = 64 << 20;

interface Run {
  parts: Buffer[];
  bytes: number;
  firstAt: number;
  lastAt: number;
  /** A write came through a handle using the page cache (O_APPEND set later by fcntl). */
  paged: boolean;
}

interface InodeRuns {
  run: Run | null;
  /** The commits of this inode, one after the other. */
  chain: Promise<void>;
  /** The first failure of a commit nobody waited for, reported by the next flush/fsync. */
  error: Error | null;
}

export class AppendRuns {
  private readonly inodes = new Map<number, InodeRuns>();
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | null = null;
  readonly counts = { runs: 0, bytes: 0, fallbacks: 0 };

  constructor(private readonly core: VfsCore) {}

  /** Whether the data path can place runs at the end (else appends write at this mount's idea of the end). */
  get supported(): boolean {
    return typeof this.core.data.appendAtEnd === 'function';
  }

  /** Whether a run of the inode is pending or committing (then settle before reading it). */
  pending(ino: number): boolean {
    return this.inodes.has(ino);
  }

  /** Adds one O_APPEND write to the inode's run (the data is copied: the request buffer goes back). */
  async add(ino: number, data: Buffer, paged: boolean): Promise<void> {
    let st = this.inodes.get(ino);
    if (st?.run && (st.run.bytes + data.length > MAX_RUN_BYTES || this.pendingBytes + data.length > MAX_PENDING_BYTES)) {
      await this.settle(ino);
      st = this.inodes.get(ino);
    }
    if (!st) {
      st = { run: null, chain: Promise.resolve(), error: null };
      this.inodes.set(ino, st);
    }
    const now = Date.now();
    st.run ??= { parts: [], bytes: 0, firstAt: now, lastAt: now, paged: false };
    st.run.parts.push(Buffer.from(data));
    st.run.bytes += data.length;
    st.run.lastAt = now;
    st.run.paged ||= paged;
    this.pendingBytes += data.length;
    this.timer ??= setInterval(() => this.commitOld(), MAX_RUN_AGE_MS / 2).unref();
  }

  /** Commits the inode's run (and waits for any commit in flight); throws the first failure since the last settle. */
  async settle(ino: number): Promise<void> {
    const st = this.inodes.get(ino);
    if (!st) return;
    await this.commit(ino, st);
    if (st.error) {
      const err = st.error;
      st.error = null;
      this.dropIfIdle(ino, st);
      throw err;
    }
  }

  /** Every inode's run (shutdown, `tierfs cache flush`). */
  async settleAll(): Promise<void> {
    for (const ino of [...this.inodes.keys()]) await this.settle(ino);
  }

  private commitOld(): void {
    const now = Date.now();
    for (const [ino, st] of this.inodes) {
      if (st.run && now - st.run.firstAt >= MAX_RUN_AGE_MS) void this.commit(ino, st);
    }
    if (this.inodes.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /** Queues the commit of the current run behind earlier ones; resolves when all are done (errors kept in st.error). */
  private commit(ino: number, st: InodeRuns): Promise<void> {
    const run = st.run;
    st.run = null;
    if (run) {
      st.chain = st.chain.then(() =>
        this.place(ino, run).catch((err: unknown) => {
          // As for buffered positional data: the run is dropped, the error reaches the next flush/fsync.
          st.error ??= err instanceof Error ? err : new Error(String(err));
          this.core.log.warn({ ino, bytes: run.bytes, err: String(err) }, 'an O_APPEND run could not be committed');
        }).finally(() => {
          this.pendingBytes -= run.bytes;
        }),
      );
    }
    const done = st.chain;
    return done.then(() => {
      if (st.chain === done) this.dropIfIdle(ino, st);
    });
  }

  private dropIfIdle(ino: number, st: InodeRuns): void {
    if (!st.run && !st.error && this.inodes.get(ino) === st) this.inodes.delete(ino);
  }

  /** One run to the end of the file. */
  private async place(ino: number, run: Run): Promise<void> {
    const { core } = this;
    const { table, data } = core;
    // This mount's positional writes of the inode come first: their data and size must be
    // in the metaserver for "the end" to be after them.
    if (table.open.inode(ino)?.dirty) {
      await data.flush(ino);
      await core.commitDirty(ino);
    }
    const body = run.parts.length === 1 ? run.parts[0]! : Buffer.concat(run.parts, run.bytes);
    const guess = await table.currentSize(ino);
    if (!data.appendAtEnd) return this.fallback(ino, body, guess);
    let placed: Awaited<ReturnType<NonNullable<typeof data.appendAtEnd>>>;
    try {
      placed = await data.appendAtEnd(ino, body, { mtimeMs: run.lastAt, ctimeMs: run.lastAt }, guess);
    } catch (err) {
      if ((err as { code?: string }).code === 'NOT_SUPPORTED') return this.fallback(ino, body, guess);
      throw err;
    }
    this.counts.runs++;
    this.counts.bytes += run.bytes;
    if (placed.inode) {
      core.ownCommit(ino, placed.inode);
    } else {
      core.versions.reset(ino, undefined);
      await data.invalidate(ino);
      await table.refresh(ino);
    }
    // The kernel's size is its own guess (its offset plus the bytes): have it ask again. A
    // page-cache write put the bytes in pages at that guess: those pages go too.
    void core.invalidateKernel(ino, run.paged);
  }

  /** No placement at commit (an older metaserver): the run is written where this mount believes the end is. */
  private async fallback(ino: number, body: Buffer, at: number): Promise<void> {
    const { core } = this;
    this.counts.fallbacks++;
    if (!(at + body.length <= Number.MAX_SAFE_INTEGER)) throw posix(E.EFBIG, 'append past the largest file size');
    await core.data.write(ino, at, body);
    await core.data.flush(ino);
    const now = Date.now();
    const dirty = core.table.open.inode(ino)?.dirty;
    if (dirty) dirty.size = Math.max(dirty.size, at + body.length);
    core.table.remember(await core.meta.setAttr(ino, { size: at + body.length, sizeGrowOnly: true, mtimeMs: now, ctimeMs: now }));
  }
}
