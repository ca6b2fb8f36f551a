// The FUSE adapter: translates fuse-native's callback ops into TierFileSystem calls and
// errors into negative errnos. No filesystem logic lives here.
import Fuse, { type FuseOps, type FuseStat } from 'fuse-native';
import { silentLogger, type Logger } from '../common/log.js';
import type { Inode } from '../metaserver/meta-client.js';
import { E, errnoOf } from './errors.js';
import { setReadAhead } from './readahead.js';
import { TierFileSystem } from './tier-fs.js';

export interface FuseMountOptions {
  attrTimeoutSec: number;
  entryTimeoutSec: number;
  fsname?: string;
  /** Largest write the kernel sends in one request (needs big_writes; up to 1 MiB with the patched addon). */
  maxWrite?: number;
  /** Largest read the kernel sends in one request (default 1 MiB, with the patched max_pages). */
  maxRead?: number;
  /** Per-op timeout of fuse-native (ms); a stuck op then fails with ETIMEDOUT instead of hanging. */
  opTimeoutMs?: number;
  debug?: boolean;
  /** Let users other than the mounting one in (allow_other; needs root or user_allow_other). */
  allowOther?: boolean;
  /** Kernel readahead window in KiB (default 4096; 0 leaves the kernel's default). */
  readAheadKiB?: number;
  logger?: Logger;
}

/**
 * The patched addon (scripts/patch-fuse.mjs) hands utimens UTIME_NOW as 2^53-1 and UTIME_OMIT
 * as 2^53-2. The stock addon turns UTIME_NOW into 1073 ms (tv_nsec (1<<30)-1 read as ms) and
 * never sees UTIME_OMIT (libfuse 2 drops those calls without flag_utime_omit_ok): treat 1073 ms
 * as "now" too (a real time of 1970-01-01T00:00:01.073Z is not expected).
 */
const UTIME_NOW_ARG = 2 ** 53 - 1;
const UTIME_OMIT_ARG = 2 ** 53 - 2;
const UTIME_NOW_STOCK_MS = Math.floor(((1 << 30) - 1) / 1e6);

/** A utimens time argument as ms, undefined to leave that time alone. */
export function utimeArg(ms: number, now: number): number | undefined {
  if (ms === UTIME_OMIT_ARG) return undefined;
  if (ms === UTIME_NOW_ARG || ms === UTIME_NOW_STOCK_MS) return now;
  return ms;
}
const UNCHANGED_ID = 0xffffffff;

function toStat(inode: Inode): FuseStat {
  const s = TierFileSystem.statOf(inode);
  return {
    mode: s.mode, uid: s.uid, gid: s.gid, size: s.size, nlink: s.nlink, ino: s.ino, rdev: s.rdev,
    blksize: s.blksize, blocks: s.blocks, atime: s.atimeMs, mtime: s.mtimeMs, ctime: s.ctimeMs,
  };
}

/** The kernel mount options we always want (see DESIGN.md §9). */
export function fuseMountArgs(opts: FuseMountOptions): string[] {
  return [
    'big_writes',
    `max_write=${opts.maxWrite ?? 1048576}`,
    // max_pages=256 (patched INIT reply) lets reads grow to 1 MiB too; filled in place by
    // readInto they are faster than 128 KiB ones (dd of 512 MiB: 1.1-1.5 GB/s vs 0.4-0.7).
    `max_read=${opts.maxRead ?? 1048576}`,
    'use_ino',
    'default_permissions',
    `attr_timeout=${opts.attrTimeoutSec}`,
    `entry_timeout=${opts.entryTimeoutSec}`,
    'negative_timeout=0',
    `fsname=${opts.fsname ?? 'tierfs'}`,
    'subtype=tierfs',
    ...(opts.allowOther ? ['allow_other'] : []),
  ];
}

/** How much earlier than fuse-native's own op timeout a read or write answers EIO by itself. */
const DEADLINE_MARGIN_MS = 5_000;

export function fuseOps(fs: TierFileSystem, log: Logger = silentLogger, opTimeoutMs = 120_000): FuseOps {
  // Reads fill the kernel's buffer in place and writes take their data from it without a
  // copy. Answering detaches that buffer, after which a late access fails instead of touching
  // memory libfuse has reused; fuse-native's own timeout reply does not detach it, so these
  // two answer EIO by themselves a little before that timeout.
  const deadlineMs = Math.max(1_000, opTimeoutMs - DEADLINE_MARGIN_MS);
  const withDeadline = (op: string, path: string, pos: number, len: number, io: () => Promise<number>, cb: (code: number) => void): void => {
    let answered = false;
    const answer = (code: number) => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      cb(code);
    };
    const timer = setTimeout(() => {
      log.warn({ op, path, offset: pos, len, afterMs: deadlineMs }, `${op} did not finish in time; answering EIO`);
      answer(-E.EIO);
    }, deadlineMs);
    io().then(answer, (err: unknown) => answer(answered ? 0 : fail(op, path, err)));
  };
  const fail = (op: string, path: string, err: unknown): number => {
    const errno = errnoOf(err);
    if (errno === E.EIO) log.warn({ op, path, err: err instanceof Error ? err.message : String(err) }, 'operation failed');
    return -errno;
  };
  // Runs a promise and reports 0 or -errno.
  const run = (op: string, path: string, p: () => Promise<unknown>, cb: (code: number) => void): void => {
    p().then(() => cb(0), (err: unknown) => cb(fail(op, path, err)));
  };
  return {
    init: (cb) => cb(0),
    access: (path, mode, cb) => run('access', path, () => fs.access(path, mode), cb),
    statfs: (path, cb) => fs.statfs().then((s) => cb(0, s), (err: unknown) => cb(fail('statfs', path, err))),
    getattr: (path, cb) => fs.getattr(path).then((i) => cb(0, toStat(i)), (err: unknown) => cb(fail('getattr', path, err))),
    fgetattr: (path, fd, cb) =>
      (fd ? fs.fgetattr(fd) : fs.getattr(path)).then((i) => cb(0, toStat(i)), (err: unknown) => cb(fail('fgetattr', path, err))),
    flush: (path, fd, cb) => run('flush', path, () => fs.flush(fd), cb),
    fsync: (path, _datasync, fd, cb) => run('fsync', path, () => fs.fsync(fd), cb),
    fsyncdir: (_path, _datasync, _fd, cb) => cb(0),
    readdir: (path, cb) =>
      fs.readdir(path).then(
        (entries) => cb(0, entries.map((e) => e.name), entries.map((e) => ({ ino: e.ino, mode: e.mode }))),
        (err: unknown) => cb(fail('readdir', path, err)),
      ),
    truncate: (path, size, cb) => run('truncate', path, () => fs.truncate(path, size), cb),
    ftruncate: (path, fd, size, cb) => run('ftruncate', path, () => (fd ? fs.ftruncate(fd, size) : fs.truncate(path, size)), cb),
    utimens: (path, atime, mtime, cb) => {
      const now = Date.now();
      run('utimens', path, () => fs.utimens(path, utimeArg(atime, now), utimeArg(mtime, now)), cb);
    },
    readlink: (path, cb) => fs.readlink(path).then((t) => cb(0, t), (err: unknown) => cb(fail('readlink', path, err))),
    chown: (path, uid, gid, cb) =>
      run('chown', path, () => fs.chown(path, uid === UNCHANGED_ID ? undefined : uid, gid === UNCHANGED_ID ? undefined : gid), cb),
    chmod: (path, mode, cb) => run('chmod', path, () => fs.chmod(path, mode), cb),
    mknod: (path, mode, dev, cb, caller) => run('mknod', path, () => fs.mknod(path, mode, dev, caller), cb),
    // The value buffer lives in native memory that is freed after the callback: copy it.
    setxattr: (path, name, value, _pos, flags, cb) =>
      run('setxattr', path, () => fs.setxattr(path, name, Buffer.from(value), flags), cb),
    getxattr: (path, name, _pos, cb) => fs.getxattr(path, name).then((v) => cb(0, v), (err: unknown) => cb(fail('getxattr', path, err))),
    listxattr: (path, cb) => fs.listxattr(path).then((names) => cb(0, names), (err: unknown) => cb(fail('listxattr', path, err))),
    removexattr: (path, name, cb) => run('removexattr', path, () => fs.removexattr(path, name), cb),
    open: (path, flags, cb) => fs.openFile(path, flags).then((fh) => cb(0, fh), (err: unknown) => cb(fail('open', path, err))),
    opendir: (_path, _flags, cb) => cb(0, 0),
    releasedir: (_path, _fd, cb) => cb(0),
    read: (path, fd, buf, len, pos, cb) => withDeadline('read', path, pos, len, () => fs.readInto(fd, pos, buf.subarray(0, len)), cb),
    // No copy: FileData.write copies what it keeps before its promise settles, and refuses a
    // buffer detached while it waited (see withDeadline).
    write: (path, fd, buf, len, pos, cb) => withDeadline('write', path, pos, len, () => fs.write(fd, pos, buf.subarray(0, len)), cb),
    release: (path, fd, cb) => run('release', path, () => fs.release(fd), cb),
    create: (path, mode, cb, caller) => fs.create(path, mode, 2, caller).then((fh) => cb(0, fh), (err: unknown) => cb(fail('create', path, err))),
    unlink: (path, cb) => run('unlink', path, () => fs.unlink(path), cb),
    rename: (src, dest, cb) => run('rename', src, () => fs.rename(src, dest), cb),
    link: (src, dest, cb) => run('link', dest, () => fs.link(src, dest), cb),
    symlink: (target, path, cb, caller) => run('symlink', path, () => fs.symlink(target, path, caller), cb),
    mkdir: (path, mode, cb, caller) => run('mkdir', path, () => fs.mkdir(path, mode, caller), cb),
    rmdir: (path, cb) => run('rmdir', path, () => fs.rmdir(path), cb),
  };
}

/** Mounts `fs` at `mountpoint`; resolves once the kernel answers init. */
export async function mountFuse(fs: TierFileSystem, mountpoint: string, opts: FuseMountOptions): Promise<Fuse> {
  const log = opts.logger ?? silentLogger;
  const fuse = new Fuse(mountpoint, fuseOps(fs, log, opts.opTimeoutMs ?? 120_000), {
    force: true,
    debug: opts.debug ?? false,
    timeout: opts.opTimeoutMs ?? 120_000,
    extraOptions: fuseMountArgs(opts),
  });
  await new Promise<void>((resolve, reject) => fuse.mount((err) => (err ? reject(err) : resolve())));
  const readAhead = opts.readAheadKiB ?? 4096;
  if (readAhead > 0) await setReadAhead(mountpoint, readAhead, log);
  return fuse;
}

export function unmountFuse(fuse: Fuse): Promise<void> {
  return new Promise((resolve, reject) => fuse.unmount((err) => (err ? reject(err) : resolve())));
}
