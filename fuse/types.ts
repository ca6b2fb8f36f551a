// The contract between the FUSE kernel-protocol server (fuse/server.ts) and a filesystem
// above it. Inode-based, in the shape of go-fuse's RawFileSystem and fuser's Filesystem:
// the filesystem never sees a path. Every method is optional; a missing one answers ENOSYS
// (the kernel then stops asking for that opcode where the protocol allows it).
//
// Errors: a method throws (or rejects with) an error carrying a positive `errno` number
// (ENOENT = 2, ...); the server answers the request with it. Anything else answers EIO.
// Lookup counting is the server's job: it counts every entry it hands the kernel (LOOKUP,
// CREATE, MKNOD, MKDIR, SYMLINK, LINK, READDIRPLUS entries) and every FORGET/BATCH_FORGET,
// and calls `forget(ino)` once, when the kernel holds no reference to that inode any more.

/** Who asked: from the request header. */
export interface RequestContext {
  /** The request's unique id (for logs). */
  unique: bigint;
  uid: number;
  gid: number;
  pid: number;
  /** Aborted when the kernel sends INTERRUPT for this request (the caller got a signal). */
  signal: AbortSignal;
  /**
   * Calls `fn` once when the kernel interrupts the request (at once if it was); returns a
   * function that cancels the call. The same event as `signal`, for hot paths: an
   * AbortController and its listener cost ~6 us of CPU, a READ from cache about as much again.
   */
  onInterrupt?(fn: () => void): () => void;
}

/**
 * struct fuse_attr, with times in milliseconds (fractions carry the sub-millisecond part,
 * to the microsecond: the server rounds there and tells the kernel time_gran 1 us).
 */
export interface Attr {
  ino: number;
  size: number;
  /** 512-byte blocks actually allocated (0 for a sparse file never written). */
  blocks: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  /** Full st_mode (type bits and permissions). */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  blksize: number;
}

/** Reply of LOOKUP/MKNOD/MKDIR/SYMLINK/LINK/CREATE and a READDIRPLUS entry. */
export interface EntryOut {
  attr: Attr;
  /** How long the kernel may trust the name -> inode binding. 0 = ask again each time. */
  entryTimeoutMs: number;
  /** How long the kernel may trust the attributes. */
  attrTimeoutMs: number;
  generation?: number;
}

/** A negative lookup the kernel may cache: return instead of throwing ENOENT. */
export interface NegativeEntryOut {
  ino: 0;
  entryTimeoutMs: number;
}

export interface AttrOut {
  attr: Attr;
  attrTimeoutMs: number;
}

export interface OpenOut {
  fh: number;
  /** FOPEN_DIRECT_IO: bypass the page cache for this handle. */
  directIo?: boolean;
  /** FOPEN_KEEP_CACHE: keep the page cache of the inode (else the kernel drops it at open). */
  keepCache?: boolean;
  nonSeekable?: boolean;
  /** FOPEN_CACHE_DIR (opendir): the kernel may cache the directory's listing. */
  cacheDir?: boolean;
}

/** SETATTR: only the fields present change. 'now' = UTIME_NOW (the server's clock). */
export interface SetAttrIn {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  atimeMs?: number | 'now';
  mtimeMs?: number | 'now';
  ctimeMs?: number;
  /** The open handle, when the change came through one (ftruncate, futimens). */
  fh?: number;
}

export interface DirEntry {
  name: string;
  ino: number;
  /** S_IFMT bits of the target. */
  type: number;
  /** Cookie of the NEXT entry: a later READDIR with this offset continues after this one. */
  offset: number;
}

export interface DirEntryPlus extends DirEntry {
  /** Attributes for READDIRPLUS; absent = the server sends the entry without (no lookup counted). */
  entry?: EntryOut;
}

export interface StatfsOut {
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  bsize: number;
  frsize: number;
  namelen: number;
}

export interface CreateOut {
  entry: EntryOut;
  open: OpenOut;
}

/** RENAME2 flags. */
export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;

/** FALLOCATE modes (linux/falloc.h). */
export const FALLOC_FL_KEEP_SIZE = 0x01;
export const FALLOC_FL_PUNCH_HOLE = 0x02;
export const FALLOC_FL_ZERO_RANGE = 0x10;

/** LSEEK whence. */
export const SEEK_DATA = 3;
export const SEEK_HOLE = 4;

/** What the kernel agreed to at INIT (after negotiation). */
export interface ConnInfo {
  major: number;
  minor: number;
  maxWrite: number;
  maxReadahead: number;
  maxPages: number;
  /** FUSE_* capability flags in force (both words). */
  flags: bigint;
  writebackCache: boolean;
}

export interface FuseFilesystem {
  init?(conn: ConnInfo): void | Promise<void>;
  destroy?(): void | Promise<void>;

  /** FUSE_EXPORT_SUPPORT is negotiated: name may be "." or ".." (the kernel asks for a parent by "..").*/
  lookup?(ctx: RequestContext, parent: number, name: string): Promise<EntryOut | NegativeEntryOut>;
  /** The kernel holds no reference to ino any more (the server did the counting). */
  forget?(ino: number): void;
  getattr?(ctx: RequestContext, ino: number, fh?: number): Promise<AttrOut>;
  setattr?(ctx: RequestContext, ino: number, changes: SetAttrIn): Promise<AttrOut>;
  readlink?(ctx: RequestContext, ino: number): Promise<string>;
  symlink?(ctx: RequestContext, parent: number, name: string, target: string): Promise<EntryOut>;
  /** mode has the type bits and is already masked by umask when the kernel applies it. */
  mknod?(ctx: RequestContext, parent: number, name: string, mode: number, rdev: number, umask: number): Promise<EntryOut>;
  /** mode carries S_IFDIR (the server adds it: the kernel sends permission bits only), already masked by umask. */
  mkdir?(ctx: RequestContext, parent: number, name: string, mode: number, umask: number): Promise<EntryOut>;
  unlink?(ctx: RequestContext, parent: number, name: string): Promise<void>;
  rmdir?(ctx: RequestContext, parent: number, name: string): Promise<void>;
  /** flags: 0, RENAME_NOREPLACE or RENAME_EXCHANGE. */
  rename?(ctx: RequestContext, parent: number, name: string, newParent: number, newName: string, flags: number): Promise<void>;
  link?(ctx: RequestContext, ino: number, newParent: number, newName: string): Promise<EntryOut>;

  /** flags: the open(2) flags. FUSE_ATOMIC_O_TRUNC is negotiated, so O_TRUNC arrives here and open must truncate. */
  open?(ctx: RequestContext, ino: number, flags: number): Promise<OpenOut>;
  /** mode has S_IFREG; flags are the open(2) flags (O_TRUNC, O_EXCL...). */
  create?(ctx: RequestContext, parent: number, name: string, mode: number, flags: number, umask: number): Promise<CreateOut>;
  /** Fills target (the reply buffer, length = the requested size) from offset; returns bytes read (short at EOF). */
  read?(ctx: RequestContext, ino: number, fh: number, offset: number, target: Buffer): Promise<number>;
  /**
   * data is only valid until the returned promise settles (it is a view into the request
   * buffer). flags: the file's open(2) flags (fuse_write_in.flags: O_DIRECT, O_APPEND...).
   * Returns bytes written.
   */
  write?(ctx: RequestContext, ino: number, fh: number, offset: number, data: Buffer, flags: number): Promise<number>;
  flush?(ctx: RequestContext, ino: number, fh: number): Promise<void>;
  release?(ctx: RequestContext, ino: number, fh: number, flags: number): Promise<void>;
  fsync?(ctx: RequestContext, ino: number, fh: number, datasync: boolean): Promise<void>;
  fallocate?(ctx: RequestContext, ino: number, fh: number, offset: number, length: number, mode: number): Promise<void>;
  /** Returns the new offset (SEEK_DATA/SEEK_HOLE; ENXIO past the end). */
  lseek?(ctx: RequestContext, ino: number, fh: number, offset: number, whence: number): Promise<number>;
  /** Returns bytes copied. */
  copyFileRange?(
    ctx: RequestContext,
    inoIn: number, fhIn: number, offIn: number,
    inoOut: number, fhOut: number, offOut: number,
    length: number, flags: number,
  ): Promise<number>;

  opendir?(ctx: RequestContext, ino: number, flags: number): Promise<OpenOut>;
  /**
   * Entries after cookie `offset` (0 = from the start, including "." and ".."). The server
   * sends as many as fit in the kernel's buffer and calls again with the last sent entry's
   * `offset`; an empty array ends the listing. `plus` = READDIRPLUS (fill `entry`).
   */
  readdir?(ctx: RequestContext, ino: number, fh: number, offset: number, plus: boolean): Promise<DirEntryPlus[]>;
  releasedir?(ctx: RequestContext, ino: number, fh: number): Promise<void>;
  fsyncdir?(ctx: RequestContext, ino: number, fh: number, datasync: boolean): Promise<void>;

  statfs?(ctx: RequestContext, ino: number): Promise<StatfsOut>;
  /** flags: XATTR_CREATE (1) / XATTR_REPLACE (2). */
  setxattr?(ctx: RequestContext, ino: number, name: string, value: Buffer, flags: number): Promise<void>;
  /** The whole value; the server answers size probes and ERANGE itself. */
  getxattr?(ctx: RequestContext, ino: number, name: string): Promise<Buffer>;
  listxattr?(ctx: RequestContext, ino: number): Promise<string[]>;
  removexattr?(ctx: RequestContext, ino: number, name: string): Promise<void>;
  access?(ctx: RequestContext, ino: number, mask: number): Promise<void>;
}

/** What the filesystem may ask of the kernel at any time (after INIT). */
export interface FuseNotifier {
  /** Drop cached attributes of ino and its page cache in [offset, offset+length) (length 0 = to the end; offset -1 = attributes only). */
  invalInode(ino: number, offset?: number, length?: number): Promise<void>;
  /** Drop the kernel's dentry parent/name. */
  invalEntry(parent: number, name: string): Promise<void>;
}

export interface FuseMountOptions {
  /** fsname shown in /proc/mounts (source). */
  fsname: string;
  /** The mount type becomes fuse.<subtype>. */
  subtype: string;
  allowOther?: boolean;
  /** The kernel checks permissions from the attributes (default true). */
  defaultPermissions?: boolean;
  readOnly?: boolean;
  /** Largest WRITE (default 1 MiB). */
  maxWrite?: number;
  /** Largest readahead the kernel may do (default 1 MiB). */
  maxReadahead?: number;
  /** FUSE_WRITEBACK_CACHE: the kernel buffers writes (off by default). */
  writebackCache?: boolean;
  /**
   * FUSE_ASYNC_DIO (default true): O_DIRECT I/O is sent as background requests, so one
   * process's asynchronous I/O (libaio, io_uring) has its whole queue depth in flight. The
   * price: such requests are not interruptible (no FUSE_INTERRUPT; the caller waits until the
   * filesystem answers or the connection is aborted). Reads of files opened with
   * `directIo` stay synchronous and interruptible either way.
   */
  asyncDio?: boolean;
  /**
   * Requests read from /dev/fuse at once (default 16): the number of read buffers of
   * maxWrite + 4 KiB each. A request gives its buffer back as soon as it is parsed, except
   * WRITE, whose data the filesystem reads in place until its promise settles.
   */
  concurrency?: number;
  /** Threads blocked in read(2) on /dev/fuse (default 2). */
  readers?: number;
  /** Requests handed to the filesystem and not yet answered, at most (default 256); past it the server stops reading. */
  maxInFlight?: number;
  /** INIT max_background: asynchronous requests (readahead, writeback) the kernel keeps in flight (default 64). */
  maxBackground?: number;
  /**
   * READDIRPLUS use (default 'auto'): 'auto' lets the kernel choose (plus for the first batch
   * of a listing and whenever entries were looked up since: the kernel's heuristic), 'always'
   * makes every listing carry attributes (fast `ls -l` of big directories, more work for
   * plain `ls`), 'off' never.
   */
  readdirplus?: 'auto' | 'always' | 'off';
  /** Log every request and reply at debug level. */
  debug?: boolean;
  logger?: FuseLogger;
}

/** The subset of a pino logger the server uses. */
export interface FuseLogger {
  debug(obj: unknown, msg?: string): void;
  info(obj: unknown, msg?: string): void;
  warn(obj: unknown, msg?: string): void;
  error(obj: unknown, msg?: string): void;
}

/** Counters of a session, for tests and stats. */
export interface FuseSessionStats {
  /** Requests handed to the filesystem and not yet answered. */
  inFlight: number;
  /** The most at once since the mount (or resetMaxInFlight). */
  maxInFlight: number;
  /** Inodes the kernel holds a reference to (the lookup table's size, root included). */
  knownInodes: number;
  /** Requests read from the device. */
  requests: number;
  /** INTERRUPT requests received. */
  interrupts: number;
  /** FORGET entries received (one per inode in a BATCH_FORGET). */
  forgets: number;
  /** Malformed requests, broken invariants, replies the kernel refused. 0 in a healthy session. */
  errors: number;
  /** Notifications written. */
  notifications: number;
  /** Requests received per opcode name (LOOKUP, READDIRPLUS, ...). */
  ops: Record<string, number>;
}

export interface FuseSession {
  readonly mountpoint: string;
  readonly notifier: FuseNotifier;
  /** What INIT negotiated. */
  readonly conn: ConnInfo;
  /** The fusectl connection number (/sys/fs/fuse/connections/N). */
  readonly connectionId: number;
  /** Resolves when the kernel connection has ended (unmounted, also from outside, or aborted). */
  readonly closed: Promise<void>;
  readonly stats: Readonly<FuseSessionStats>;
  resetMaxInFlight(): void;
  /** Kernel references the server has counted for ino (0 = forgotten). */
  lookupCount(ino: number): number;
  /**
   * umount(8). When busy: with lazy, `umount -l` (the connection lives on until the last
   * open file is closed; `closed` resolves then); without, rejects with EBUSY. A non-lazy
   * unmount resolves once the connection has ended.
   */
  unmount(opts?: { lazy?: boolean }): Promise<void>;
  /** Aborts the connection through fusectl: pending and later calls on the mount fail with ENOTCONN. */
  abort(): Promise<void>;
}
