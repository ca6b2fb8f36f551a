// Constants and struct sizes of the Linux FUSE kernel protocol (include/uapi/linux/fuse.h,
// protocol 7.45, kernel 6.18). Every struct is little-endian on the machines we run on and
// padded to 8 bytes by the header itself; the byte offsets live next to their use in codec.ts.

export const FUSE_KERNEL_VERSION = 7;
/** The newest minor we speak; we answer with min(kernel's, ours). */
export const FUSE_KERNEL_MINOR_VERSION = 45;
/** Oldest minor we accept: 7.31 brought FUSE_MAX_PAGES and the 64-byte init_out tail we rely on. */
export const FUSE_MIN_MINOR_VERSION = 31;

export const FUSE_ROOT_ID = 1;

export const enum Opcode {
  LOOKUP = 1,
  FORGET = 2,
  GETATTR = 3,
  SETATTR = 4,
  READLINK = 5,
  SYMLINK = 6,
  MKNOD = 8,
  MKDIR = 9,
  UNLINK = 10,
  RMDIR = 11,
  RENAME = 12,
  LINK = 13,
  OPEN = 14,
  READ = 15,
  WRITE = 16,
  STATFS = 17,
  RELEASE = 18,
  FSYNC = 20,
  SETXATTR = 21,
  GETXATTR = 22,
  LISTXATTR = 23,
  REMOVEXATTR = 24,
  FLUSH = 25,
  INIT = 26,
  OPENDIR = 27,
  READDIR = 28,
  RELEASEDIR = 29,
  FSYNCDIR = 30,
  GETLK = 31,
  SETLK = 32,
  SETLKW = 33,
  ACCESS = 34,
  CREATE = 35,
  INTERRUPT = 36,
  BMAP = 37,
  DESTROY = 38,
  IOCTL = 39,
  POLL = 40,
  NOTIFY_REPLY = 41,
  BATCH_FORGET = 42,
  FALLOCATE = 43,
  READDIRPLUS = 44,
  RENAME2 = 45,
  LSEEK = 46,
  COPY_FILE_RANGE = 47,
  SETUPMAPPING = 48,
  REMOVEMAPPING = 49,
  SYNCFS = 50,
  TMPFILE = 51,
  STATX = 52,
  COPY_FILE_RANGE_64 = 53,
}

/** Names for debug logs. */
export const OPCODE_NAMES: Record<number, string> = {
  1: 'LOOKUP', 2: 'FORGET', 3: 'GETATTR', 4: 'SETATTR', 5: 'READLINK', 6: 'SYMLINK', 8: 'MKNOD',
  9: 'MKDIR', 10: 'UNLINK', 11: 'RMDIR', 12: 'RENAME', 13: 'LINK', 14: 'OPEN', 15: 'READ',
  16: 'WRITE', 17: 'STATFS', 18: 'RELEASE', 20: 'FSYNC', 21: 'SETXATTR', 22: 'GETXATTR',
  23: 'LISTXATTR', 24: 'REMOVEXATTR', 25: 'FLUSH', 26: 'INIT', 27: 'OPENDIR', 28: 'READDIR',
  29: 'RELEASEDIR', 30: 'FSYNCDIR', 31: 'GETLK', 32: 'SETLK', 33: 'SETLKW', 34: 'ACCESS',
  35: 'CREATE', 36: 'INTERRUPT', 37: 'BMAP', 38: 'DESTROY', 39: 'IOCTL', 40: 'POLL',
  41: 'NOTIFY_REPLY', 42: 'BATCH_FORGET', 43: 'FALLOCATE', 44: 'READDIRPLUS', 45: 'RENAME2',
  46: 'LSEEK', 47: 'COPY_FILE_RANGE', 48: 'SETUPMAPPING', 49: 'REMOVEMAPPING', 50: 'SYNCFS',
  51: 'TMPFILE', 52: 'STATX', 53: 'COPY_FILE_RANGE_64',
};

export const enum NotifyCode {
  POLL = 1,
  INVAL_INODE = 2,
  INVAL_ENTRY = 3,
  STORE = 4,
  RETRIEVE = 5,
  DELETE = 6,
}

// INIT flags (first word; the second word, flags2, holds bits 32..63 shifted down).
export const FUSE_ASYNC_READ = 1n << 0n;
export const FUSE_POSIX_LOCKS = 1n << 1n;
export const FUSE_ATOMIC_O_TRUNC = 1n << 3n;
export const FUSE_EXPORT_SUPPORT = 1n << 4n;
export const FUSE_BIG_WRITES = 1n << 5n;
export const FUSE_DONT_MASK = 1n << 6n;
export const FUSE_SPLICE_WRITE = 1n << 7n;
export const FUSE_SPLICE_MOVE = 1n << 8n;
export const FUSE_SPLICE_READ = 1n << 9n;
export const FUSE_FLOCK_LOCKS = 1n << 10n;
export const FUSE_HAS_IOCTL_DIR = 1n << 11n;
export const FUSE_AUTO_INVAL_DATA = 1n << 12n;
export const FUSE_DO_READDIRPLUS = 1n << 13n;
export const FUSE_READDIRPLUS_AUTO = 1n << 14n;
export const FUSE_ASYNC_DIO = 1n << 15n;
export const FUSE_WRITEBACK_CACHE = 1n << 16n;
export const FUSE_NO_OPEN_SUPPORT = 1n << 17n;
export const FUSE_PARALLEL_DIROPS = 1n << 18n;
export const FUSE_HANDLE_KILLPRIV = 1n << 19n;
export const FUSE_POSIX_ACL = 1n << 20n;
export const FUSE_ABORT_ERROR = 1n << 21n;
export const FUSE_MAX_PAGES = 1n << 22n;
export const FUSE_CACHE_SYMLINKS = 1n << 23n;
export const FUSE_NO_OPENDIR_SUPPORT = 1n << 24n;
export const FUSE_EXPLICIT_INVAL_DATA = 1n << 25n;
export const FUSE_MAP_ALIGNMENT = 1n << 26n;
export const FUSE_SUBMOUNTS = 1n << 27n;
export const FUSE_HANDLE_KILLPRIV_V2 = 1n << 28n;
export const FUSE_SETXATTR_EXT = 1n << 29n;
export const FUSE_INIT_EXT = 1n << 30n;
export const FUSE_SECURITY_CTX = 1n << 32n;
export const FUSE_HAS_INODE_DAX = 1n << 33n;
export const FUSE_CREATE_SUPP_GROUP = 1n << 34n;
export const FUSE_HAS_EXPIRE_ONLY = 1n << 35n;
export const FUSE_DIRECT_IO_ALLOW_MMAP = 1n << 36n;
export const FUSE_PASSTHROUGH = 1n << 37n;
export const FUSE_NO_EXPORT_SUPPORT = 1n << 38n;
export const FUSE_HAS_RESEND = 1n << 39n;

// fuse_setattr_in.valid
export const FATTR_MODE = 1 << 0;
export const FATTR_UID = 1 << 1;
export const FATTR_GID = 1 << 2;
export const FATTR_SIZE = 1 << 3;
export const FATTR_ATIME = 1 << 4;
export const FATTR_MTIME = 1 << 5;
export const FATTR_FH = 1 << 6;
export const FATTR_ATIME_NOW = 1 << 7;
export const FATTR_MTIME_NOW = 1 << 8;
export const FATTR_LOCKOWNER = 1 << 9;
export const FATTR_CTIME = 1 << 10;
export const FATTR_KILL_SUIDGID = 1 << 11;

// fuse_open_out.open_flags
export const FOPEN_DIRECT_IO = 1 << 0;
export const FOPEN_KEEP_CACHE = 1 << 1;
export const FOPEN_NONSEEKABLE = 1 << 2;
export const FOPEN_CACHE_DIR = 1 << 3;

export const FUSE_GETATTR_FH = 1 << 0;
export const FUSE_FSYNC_FDATASYNC = 1 << 0;
/** Bit 0 of an INTERRUPT request's own unique. */
export const FUSE_INT_REQ_BIT = 1n;

// Struct sizes (bytes).
export const IN_HEADER_SIZE = 40;
export const OUT_HEADER_SIZE = 16;
export const ATTR_SIZE = 88;
export const ENTRY_OUT_SIZE = 40 + ATTR_SIZE; // 128
export const ATTR_OUT_SIZE = 16 + ATTR_SIZE; // 104
export const OPEN_OUT_SIZE = 16;
export const WRITE_OUT_SIZE = 8;
export const STATFS_OUT_SIZE = 80;
export const INIT_OUT_SIZE = 64;
export const GETXATTR_OUT_SIZE = 8;
export const LSEEK_OUT_SIZE = 8;
export const COPY_FILE_RANGE_OUT_SIZE = 8;
/** fuse_dirent without its name: ino, off, namelen, type. */
export const DIRENT_HEADER_SIZE = 24;
/** fuse_direntplus without its name: entry_out then the dirent header. */
export const DIRENTPLUS_HEADER_SIZE = ENTRY_OUT_SIZE + DIRENT_HEADER_SIZE; // 152
export const NOTIFY_INVAL_INODE_SIZE = 24;
export const NOTIFY_INVAL_ENTRY_SIZE = 16;

/** Room for the request header and the largest fixed part ahead of WRITE's data. The kernel
 *  refuses to hand a request to a read buffer smaller than max_write + this (FUSE_MIN_READ_BUFFER 8 KiB). */
export const READ_BUFFER_HEADROOM = 4096;

export const PAGE_SIZE = 4096;
/** The kernel's upper bound on max_pages (FUSE_MAX_MAX_PAGES, also /proc/sys/fs/fuse/max_pages_limit by default). */
export const FUSE_MAX_MAX_PAGES = 256;

/** FUSE_DIRENT_ALIGN: records are padded to 8 bytes. */
export function direntAlign(n: number): number {
  return (n + 7) & ~7;
}

// errno values used by the server itself.
export const EPERM = 1;
export const ENOENT = 2;
export const EINTR = 4;
export const EIO = 5;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EBUSY = 16;
export const EINVAL = 22;
export const ERANGE = 34;
export const ENOSYS = 38;
export const ENODATA = 61;
export const ENODEV = 19;
export const EPROTO = 71;
export const ENOTSUP = 95;
