// The boundary between the gateway and the metadata service. The gateway programs against
// this interface only; metaserver/client.ts implements it over gRPC (partition routing,
// leader following, retries with request ids, cross-partition transactions).
// Errors are TierfsErrors with the shared status codes (NOT_FOUND, EXISTS, NOT_EMPTY, ...).
import type { AppendRunRequest, SliceRef } from '../s3adaptor/types.js';

/** File types as in st_mode's S_IFMT bits. */
export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;
export const S_IFIFO = 0o010000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFSOCK = 0o140000;

export const ROOT_INO = 1;
export const MAX_NAME_BYTES = 255;

export interface InodeAttr {
  ino: number;
  /** Full st_mode: type bits (S_IFMT) and permission bits. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  rdev: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  /** Names of the inode's xattrs, when the metaserver sent them with the attributes. */
  xattrNames?: string[];
  /** Bytes of data its committed slices hold (st_blocks), when the metaserver keeps the count. */
  allocatedBytes?: number;
  /** Directories: how many times their names changed (absent: the metaserver does not count). */
  entriesVersion?: number;
  /**
   * Bumped by the metaserver at every change of the file's data or size; what a mount's
   * caches of the file hold is known by it (gateway/coherence.ts). Absent from an older server.
   */
  dataVersion?: number;
}

/** One write of file data that reached storage (Curve's S3ChunkInfo). Same shape as s3adaptor's Slice. */
export interface SliceRecord {
  chunkId: number;
  compaction: number;
  offset: number;
  len: number;
  size: number;
  zero: boolean;
  /** Other slices read its objects (copy by reference): deleting the inode or the slice leaves them. */
  shared?: boolean;
  /** A copy by reference: reads the objects of the slice it names. */
  ref?: SliceRef;
  /** With ref: the objects read are this slice's own (an O_APPEND run); deleted with it. */
  refOwned?: boolean;
}

export interface Inode extends InodeAttr {
  symlink: string;
  /** Parent directories (one entry per hard link). */
  parents: number[];
}

export interface Dentry {
  parent: number;
  name: string;
  ino: number;
  /** S_IFMT bits of the target, so listings need no inode fetch. */
  type: number;
  /** The target's inode, when the lookup could fetch it in the same call. */
  inode?: Inode;
}

export interface CreateNodeOptions {
  mode: number;
  uid: number;
  gid: number;
  rdev?: number;
  symlink?: string;
  /** Fail with EXISTS when the name exists (always true for mkdir/mknod/symlink). */
  exclusive?: boolean;
}

export interface SetAttrChanges {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  atimeMs?: number;
  mtimeMs?: number;
  ctimeMs?: number;
  /** With size: size = max(current, size) (what a write commits; a truncate leaves it unset). */
  sizeGrowOnly?: boolean;
}

export interface RenameResult {
  /** The inode the name moved and its type (absent from clients that do not say). */
  ino?: number;
  type?: number;
  /** The source and destination directories after the change, when the metaserver sends them. */
  parents?: Inode[];
  /** The inode the destination name pointed to before, if it was replaced, with its nlink after. */
  replaced?: { ino: number; nlink: number; type: number };
  /** The replaced inode went to the trash (opts.releaseIno named it and its nlink reached 0). */
  released?: boolean;
}

/** What removeToTrash did: moved the name into the bin (`entry`), or dropped one of several links. */
export interface TrashRemoval {
  /** The inode after the change. */
  inode: Inode;
  /** Its entry name in the bin, and the bin directory holding it; null when only a link was dropped. */
  entry: string | null;
  binDir: number;
  /** The directory it left, after (its times). */
  parent?: Inode;
}

export interface FsUsage {
  inodes: number;
  usedBytes: number;
}

/**
 * Lets the metaserver put an inode whose last name goes away into the trash in the same
 * write (one Raft entry instead of unlink + getInode + releaseOrphan). Pass the inode the
 * caller believes the name points to, and only when the caller holds no open handle on it:
 * the release happens only if the name really pointed to that inode and its nlink reached 0.
 */
export interface ReleaseOptions {
  releaseIno?: number;
}

/** What a close commits about a file written through the mount. */
export interface FileSizeAndTimes {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  /** size = max(current, size): what writes commit (a truncate sets the size exactly). */
  growOnly?: boolean;
}

/**
 * An O_APPEND run already in objects (one slice extent of chunk 0 under ownerChunkId), to be
 * placed at the end of the file by the metaserver when the write applies (proto AppendRun).
 */
export type AppendRun = AppendRunRequest;

/** Where an append run landed, and the inode after it. */
export interface AppendResult {
  base: number;
  inode: Inode;
}

export interface MetaClient {
  lookup(parent: number, name: string): Promise<Dentry>;
  /** Names after `last` in byte order, at most `count`. */
  listDentries(parent: number, last: string, count: number): Promise<Dentry[]>;
  getInode(ino: number): Promise<Inode>;
  batchGetAttr(inos: number[]): Promise<InodeAttr[]>;
  /** batchGetAttr with whole inodes (symlink target, parents); optional. Missing inodes are left out. */
  batchGetInodes?(inos: number[]): Promise<Inode[]>;
  /** Creates an inode and its dentry under parent (nlink of a new dir is 2; parent's nlink grows for a dir). */
  createNode(parent: number, name: string, opts: CreateNodeOptions): Promise<Inode>;
  /** createNode that also returns the parent directory as changed by it, when known. */
  createNodeWithParent?(parent: number, name: string, opts: CreateNodeOptions): Promise<{ inode: Inode; parent?: Inode; created?: boolean }>;
  /** Hard link: a new dentry for ino; nlink + 1, parent list updated. */
  link(ino: number, parent: number, name: string): Promise<Inode>;
  /** Removes a non-directory's dentry and decrements nlink; returns the inode after (nlink may be 0). IS_DIR for a directory. */
  unlink(parent: number, name: string, opts?: ReleaseOptions): Promise<Inode>;
  /** unlink, also answering the directory after when the metaserver sends it (optional). */
  unlinkWithParent?(parent: number, name: string, opts?: ReleaseOptions): Promise<{ inode: Inode; parent?: Inode }>;
  /** Removes an empty directory (NOT_EMPTY, NOT_DIR). */
  rmdir(parent: number, name: string): Promise<void>;
  /**
   * unlink (dir false) or rmdir into the recycle bin in one write (optional; trash-bin.ts): the
   * name moves into the bin, unless it is one of several names of a file, which only loses it.
   * NOT_SUPPORTED, with nothing changed, when one write cannot do it (the inode lives in
   * another copyset): the caller then renames into the bin itself.
   */
  removeToTrash?(parent: number, name: string, dir: boolean): Promise<TrashRemoval>;
  /** Atomic rename with POSIX semantics: replaces a file or an empty dir, NOT_EMPTY, IS_DIR, NOT_DIR, INVALID_ARGUMENT into itself. */
  rename(srcParent: number, srcName: string, dstParent: number, dstName: string, opts?: ReleaseOptions): Promise<RenameResult>;
  /** RENAME_EXCHANGE: swaps the two names' targets atomically (both must exist). Optional. */
  exchange?(srcParent: number, srcName: string, dstParent: number, dstName: string): Promise<void>;
  setAttr(ino: number, changes: SetAttrChanges): Promise<Inode>;
  getXattr(ino: number, name: string): Promise<Buffer>;
  listXattr(ino: number): Promise<string[]>;
  /** flags: 0, XATTR_CREATE (1: EXISTS if present) or XATTR_REPLACE (2: NO_DATA if absent). */
  setXattr(ino: number, name: string, value: Buffer, flags: number): Promise<void>;
  removeXattr(ino: number, name: string): Promise<void>;
  /** Slices of the inode per chunk index, in write order. */
  getSlices(ino: number): Promise<Map<number, SliceRecord[]>>;
  /** Returns the inode after, when the metaserver sends it (its dataVersion tells the mount's own commits apart). */
  appendSlices(ino: number, added: Map<number, SliceRecord[]>): Promise<Inode | void>;
  /** appendSlices plus size/mtime/ctime in one atomic metaserver write (optional: a file's close). */
  appendSlicesAndAttrs?(ino: number, added: Map<number, SliceRecord[]>, attrs: FileSizeAndTimes): Promise<Inode | void>;
  /** O_APPEND: places a run at the end of the file as the metaserver finds it (optional; s3adaptor/README.md). */
  appendRun?(ino: number, run: AppendRun): Promise<AppendResult>;
  /** Compaction swap; TX_CONFLICT when `removed` are no longer all present. */
  replaceSlices(ino: number, chunkIndex: number, removed: SliceRecord[], added: SliceRecord[]): Promise<void>;
  /** Called when nlink is 0 and the last open handle closed: moves the inode to the trash (its data gets deleted). */
  releaseOrphan(ino: number): Promise<void>;
  usage(): Promise<FsUsage>;
  close(): Promise<void>;
}
