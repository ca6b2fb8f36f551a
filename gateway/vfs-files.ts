// File contents through open handles: open (close-to-open revalidation), create, read into
// the reply buffer, write with the size kept dirty until flush/fsync, truncate, fallocate,
// SEEK_DATA/SEEK_HOLE and copy_file_range by reference. Everything data-side goes through
// FileData; what it cannot do answers EOPNOTSUPP/ENOSYS so the kernel falls back itself.
import type { CreateOut, OpenOut, RequestContext } from '../fuse/types.js';
import { FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE, SEEK_DATA, SEEK_HOLE } from '../fuse/types.js';
import { S_IFDIR, S_IFMT, S_IFREG } from '../metaserver/meta-client.js';
import { revalidateForOpen } from './coherence.js';
import { E, posix } from './errors.js';
import { O_APPEND, type FileHandle } from './open-files.js';
import type { VfsCore } from './vfs-core.js';
import type { VfsNamespace } from './vfs-namespace.js';

const O_EXCL = 0o200;
const O_TRUNC = 0o1000;
const O_ACCMODE = 3;
/** O_DIRECT I/O must be aligned to the logical block size, as on ext4. */
const DIRECT_ALIGN = 512;
/**
 * Largest file: 2^53 - 1 bytes. Offsets reach us as JavaScript numbers, exact only below
 * 2^53; past that a write would land somewhere else than asked (and its metadata could not
 * be read back), so it fails with EFBIG as on a filesystem whose limit it passes.
 */
export const MAX_FILE_BYTES = Number.MAX_SAFE_INTEGER;

function checkFileRange(offset: number, length: number, what: string): void {
  if (!(offset + length <= MAX_FILE_BYTES)) throw posix(E.EFBIG, `${what} at ${offset}+${length} passes the largest file size (2^53 - 1 bytes)`);
}

/**
 * A read blocked on S3 answers EINTR as soon as the caller is interrupted (FUSE_INTERRUPT).
 * Safe for reads only: the reply buffer is the request's own, so the late read fills memory
 * nobody reads any more. A write's data is the server's request buffer and must not be given
 * back while the data path may still copy it.
 */
function interruptible<T>(p: Promise<T>, ctx: RequestContext): Promise<T> {
  if (ctx.onInterrupt) {
    // The server's own listener: no AbortController per read (a warm READ is a few us).
    return new Promise<T>((resolve, reject) => {
      const cancel = ctx.onInterrupt!(() => reject(posix(E.EINTR, 'read interrupted by the caller')));
      p.then(
        (v) => {
          cancel();
          resolve(v);
        },
        (err: unknown) => {
          cancel();
          reject(err);
        },
      );
    });
  }
  const signal = ctx.signal;
  if (signal.aborted) return Promise.reject(posix(E.EINTR, 'interrupted'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(posix(E.EINTR, 'read interrupted by the caller'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

export class VfsFiles {
  constructor(
    private readonly core: VfsCore,
    private readonly names: VfsNamespace,
  ) {}

  private handle(ino: number, fh: number): FileHandle {
    const h = this.core.table.open.handle(fh);
    if (h.ino !== ino) throw posix(E.EBADF, `handle ${fh} belongs to inode ${h.ino}, not ${ino}`);
    return h;
  }

  // ---- open/close ----

  async open(_ctx: RequestContext, ino: number, flags: number): Promise<OpenOut> {
    if ((flags & O_ACCMODE) !== 0 || flags & O_TRUNC) this.core.assertWritable();
    const { table } = this.core;
    // Close-to-open: every open revalidates with the metaserver; when another mount changed
    // the data, our caches and the kernel's pages and attributes go (coherence.ts).
    let keepCache = await revalidateForOpen(this.core, ino);
    const inode = (await table.get(ino)).inode;
    if ((inode.mode & S_IFMT) === S_IFDIR) throw posix(E.EISDIR, `inode ${ino} is a directory`);
    // A concurrent open may have won the race while we waited: share its state.
    const h = table.open.open(ino, flags, table.open.inode(ino)?.inode ?? inode);
    try {
      if (flags & O_TRUNC && (inode.mode & S_IFMT) === S_IFREG && (await table.currentSize(ino)) > 0) {
        await this.truncate(ino, 0);
        keepCache = false;
      }
    } catch (err) {
      await this.release(_ctx, ino, h.fh, flags);
      throw err;
    }
    // O_APPEND writes bypass the page cache: the kernel would put them at its own idea of the end.
    return { fh: h.fh, keepCache, ...(h.append && this.core.appends.supported ? { directIo: true } : {}) };
  }

  async create(ctx: RequestContext, parent: number, name: string, mode: number, flags: number, umask: number): Promise<CreateOut> {
    const { inode, created } = await this.names.createNode(ctx, parent, name, S_IFREG | (mode & ~umask & 0o7777), {
      exclusive: (flags & O_EXCL) !== 0,
    });
    const { table } = this.core;
    const h = table.open.open(inode.ino, flags, table.open.inode(inode.ino)?.inode ?? inode);
    // The caches of a new file hold its (empty) data; of a file met existing, nothing known.
    if (!created) await this.core.data.invalidate(inode.ino);
    this.core.versions.reset(inode.ino, inode.dataVersion);
    // Met a file another mount created a moment before: O_TRUNC still applies to it.
    if (!created && flags & O_TRUNC && inode.size > 0) await this.truncate(inode.ino, 0);
    const direct = h.append && this.core.appends.supported ? { directIo: true } : {};
    return { entry: await this.core.entryOut((await table.get(inode.ino)).inode), open: { fh: h.fh, keepCache: created, ...direct } };
  }

  async release(_ctx: RequestContext, ino: number, fh: number, _flags: number): Promise<void> {
    const { table, data, log } = this.core;
    const h = this.handle(ino, fh);
    if (this.core.appends.pending(ino)) {
      await this.core.appends.settle(ino).catch((err: unknown) => log.warn({ ino, err: String(err) }, 'could not commit O_APPEND writes at a close'));
    }
    const state = table.open.inode(h.ino);
    if (state?.dirty && state.handles === 1) {
      // The kernel sends FLUSH before the last RELEASE; this covers a flush that failed.
      await data.flush(h.ino).then(() => this.core.commitDirty(h.ino)).catch((err: unknown) =>
        log.warn({ ino: h.ino, err: String(err) }, 'could not commit a file at its last close'),
      );
    }
    const { last } = table.open.close(fh);
    if (last) await this.core.releaseIfOrphan(h.ino);
  }

  // ---- data ----

  /**
   * READ into the FUSE reply buffer: no buffer of our own, no second copy. (No access-mode
   * check: the kernel checks the caller's descriptor, and with the writeback cache it reads
   * through handles opened O_WRONLY to fill partial pages.)
   */
  async read(ctx: RequestContext, ino: number, fh: number, offset: number, target: Buffer): Promise<number> {
    this.handle(ino, fh);
    if (this.core.appends.pending(ino)) await this.core.appends.settle(ino);
    const size = await this.core.table.currentSize(ino);
    return interruptible(this.core.data.readInto(ino, offset, target, size), ctx);
  }

  async write(_ctx: RequestContext, ino: number, fh: number, offset: number, data: Buffer, flags: number): Promise<number> {
    this.core.assertWritable();
    const h = this.handle(ino, fh);
    if (!h.writable) throw posix(E.EBADF, 'file not open for writing');
    const { appends } = this.core;
    if ((h.append || flags & O_APPEND) && appends.supported) {
      // The offset is the kernel's idea of the end: ignored, the run goes where the end is at commit.
      checkFileRange(await this.core.table.currentSize(ino), data.length, 'append');
      await appends.add(ino, data, !h.append);
      return data.length;
    }
    if (appends.pending(ino)) await appends.settle(ino); // program order: earlier appends land first
    if (h.direct && (offset % DIRECT_ALIGN !== 0 || data.length % DIRECT_ALIGN !== 0)) {
      throw posix(E.EINVAL, `O_DIRECT write at ${offset}+${data.length} is not ${DIRECT_ALIGN}-byte aligned`);
    }
    checkFileRange(offset, data.length, 'write');
    const { table } = this.core;
    const size = await table.currentSize(ino);
    await this.core.data.write(ino, offset, data);
    this.markWritten(ino, size, offset + data.length, true);
    return data.length;
  }

  /**
   * Size and times of a file written through this mount, kept until flush/fsync commits them;
   * `grows`: the operation extends the file to at least `end` (a write does, a hole does not).
   */
  private markWritten(ino: number, sizeBefore: number, end: number, grows: boolean): void {
    const state = this.core.table.open.inode(ino);
    if (!state) throw posix(E.EBADF, `inode ${ino} is not open`);
    const now = Date.now();
    const dirty = state.dirty ?? { size: sizeBefore, mtimeMs: now, ctimeMs: now, end: 0 };
    dirty.size = Math.max(dirty.size, end);
    if (grows) dirty.end = Math.max(dirty.end, end);
    dirty.mtimeMs = now;
    dirty.ctimeMs = now;
    state.dirty = dirty;
  }

  async flush(_ctx: RequestContext, ino: number, fh: number): Promise<void> {
    const h = this.handle(ino, fh);
    const { table, data } = this.core;
    if (this.core.appends.pending(ino)) await this.core.appends.settle(ino);
    const state = table.open.inode(ino);
    if (!h.writable && !state?.dirty) return;
    const dirty = state?.dirty;
    if (state && dirty && data.flushWithAttrs) {
      // Last slices and size/times in one metaserver write (growing the file to at least what
      // was written). Writes racing with this flush change `dirty`; they stay dirty for the
      // commitDirty below.
      const sent = { size: dirty.end, mtimeMs: dirty.mtimeMs, ctimeMs: dirty.ctimeMs, growOnly: true };
      if (await data.flushWithAttrs(ino, sent)) {
        const now = state.dirty;
        if (now && now.end === sent.size && now.mtimeMs === sent.mtimeMs && now.ctimeMs === sent.ctimeMs) state.dirty = null;
        // The metaserver's inode after the commit reached the table already when the data
        // path reports its commits (coherence.ts); else this is the best guess.
        const cur = state.inode;
        table.remember({ ...cur, size: Math.max(cur.size, sent.size), mtimeMs: sent.mtimeMs, ctimeMs: sent.ctimeMs });
      }
    } else {
      await data.flush(ino);
    }
    await this.core.commitDirty(ino);
  }

  async fsync(_ctx: RequestContext, ino: number, fh: number, _datasync: boolean): Promise<void> {
    this.handle(ino, fh);
    if (this.core.appends.pending(ino)) await this.core.appends.settle(ino);
    await this.core.data.fsync(ino);
    await this.core.commitDirty(ino);
  }

  /** Truncate (SETATTR size, O_TRUNC): the data path first, then size and times. */
  async truncate(ino: number, size: number): Promise<void> {
    this.core.assertWritable();
    const { table, data, meta } = this.core;
    const inode = (await table.get(ino)).inode;
    if ((inode.mode & S_IFMT) === S_IFDIR) throw posix(E.EISDIR, 'cannot truncate a directory');
    if ((inode.mode & S_IFMT) !== S_IFREG) throw posix(E.EINVAL, 'can only truncate regular files');
    checkFileRange(size, 0, 'truncate');
    if (this.core.appends.pending(ino)) await this.core.appends.settle(ino);
    const oldSize = await table.currentSize(ino);
    await data.truncate(ino, oldSize, size);
    const now = Date.now();
    const dirty = table.open.inode(ino)?.dirty;
    if (dirty) Object.assign(dirty, { size, mtimeMs: now, ctimeMs: now, end: Math.min(dirty.end, size) });
    this.core.ownCommit(ino, await meta.setAttr(ino, { size, mtimeMs: now, ctimeMs: now }));
  }

  // ---- allocation, holes, copies ----

  async fallocate(_ctx: RequestContext, ino: number, fh: number, offset: number, length: number, mode: number): Promise<void> {
    this.core.assertWritable();
    const h = this.handle(ino, fh);
    if (!h.writable) throw posix(E.EBADF, 'file not open for writing');
    if (offset < 0 || length <= 0) throw posix(E.EINVAL, `fallocate range ${offset}+${length}`);
    checkFileRange(offset, length, 'fallocate');
    const known = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
    if (mode & ~known) throw posix(E.EOPNOTSUPP, `fallocate mode 0x${mode.toString(16)} is not supported`);
    const keepSize = (mode & FALLOC_FL_KEEP_SIZE) !== 0;
    const data = this.core.data;
    if (this.core.appends.pending(ino)) await this.core.appends.settle(ino);
    const size = await this.core.table.currentSize(ino);
    let newSize: number;
    if (mode & FALLOC_FL_PUNCH_HOLE) {
      // As on Linux: a hole never changes the size, so KEEP_SIZE is required with it.
      if (!keepSize || mode & FALLOC_FL_ZERO_RANGE) throw posix(E.EOPNOTSUPP, 'PUNCH_HOLE needs KEEP_SIZE (and excludes ZERO_RANGE)');
      if (!data.punchHole) throw posix(E.EOPNOTSUPP, 'the data path cannot punch holes');
      await data.punchHole(ino, offset, length, size);
      newSize = size;
    } else if (mode & FALLOC_FL_ZERO_RANGE) {
      if (!data.zeroRange) throw posix(E.EOPNOTSUPP, 'the data path cannot zero a range');
      newSize = await data.zeroRange(ino, offset, length, size, keepSize);
    } else {
      if (!data.allocate) throw posix(E.EOPNOTSUPP, 'the data path cannot allocate');
      newSize = await data.allocate(ino, offset, length, size, keepSize);
      // Nothing stored and the size unchanged: nothing to commit (ext4 leaves mtime too).
      if (newSize === size) return;
    }
    this.markWritten(ino, size, newSize, newSize > size);
    await this.core.commitDirty(ino);
  }

  async lseek(_ctx: RequestContext, ino: number, fh: number, offset: number, whence: number): Promise<number> {
    this.handle(ino, fh);
    if (whence !== SEEK_DATA && whence !== SEEK_HOLE) throw posix(E.EINVAL, `lseek whence ${whence}`);
    const data = this.core.data;
    // ENOSYS: the kernel then treats the whole file as data itself (generic_file_llseek).
    if (!data.seekData || !data.seekHole) throw posix(E.ENOSYS, 'the data path cannot find holes');
    if (this.core.appends.pending(ino)) await this.core.appends.settle(ino);
    const size = await this.core.table.currentSize(ino);
    if (offset < 0 || offset >= size) throw posix(E.ENXIO, `offset ${offset} is at or past the end (${size})`);
    return whence === SEEK_DATA ? data.seekData(ino, offset, size) : data.seekHole(ino, offset, size);
  }

  async copyFileRange(
    _ctx: RequestContext,
    inoIn: number, fhIn: number, offIn: number,
    inoOut: number, fhOut: number, offOut: number,
    length: number, flags: number,
  ): Promise<number> {
    this.core.assertWritable();
    const src = this.handle(inoIn, fhIn);
    const dst = this.handle(inoOut, fhOut);
    if (flags !== 0) throw posix(E.EINVAL, `copy_file_range flags ${flags}`);
    if (!src.readable || !dst.writable) throw posix(E.EBADF, 'copy_file_range needs a readable source and a writable destination');
    const data = this.core.data;
    // EOPNOTSUPP: the kernel copies through read/write itself.
    if (!data.copyRange) throw posix(E.EOPNOTSUPP, 'the data path cannot copy by reference');
    const { table, appends } = this.core;
    if (appends.pending(inoIn)) await appends.settle(inoIn);
    if (appends.pending(inoOut)) await appends.settle(inoOut);
    const srcSize = await table.currentSize(inoIn);
    checkFileRange(offOut, Math.max(0, Math.min(length, srcSize - offIn)), 'copy_file_range');
    // The data path settles buffered data of both files first (the copy references objects).
    const copied = await data.copyRange(inoIn, offIn, inoOut, offOut, length, srcSize);
    if (copied === 0) return 0;
    const dstSize = await table.currentSize(inoOut);
    this.markWritten(inoOut, dstSize, offOut + copied, true);
    await this.core.commitDirty(inoOut);
    return copied;
  }
}
