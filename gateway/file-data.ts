// The file data path as the gateway sees it: exactly the S3Adaptor methods it calls, so
// s3adaptor's `S3Adaptor` satisfies this structurally, and tests can use an in-memory one.
import type { AppendRun, FileSizeAndTimes, Inode, MetaClient, SliceRecord } from '../metaserver/meta-client.js';
import { reportOwnCommit } from './coherence.js';
import type { DiskCacheLimits } from '../diskcache/index.js';
import type { EvictResult, WarmupResult } from '../s3adaptor/cache-control.js';

export interface FileData {
  /**
   * `data` is valid only until the returned promise settles (the FUSE adapter hands over the
   * kernel request's buffer without copying it): copy whatever is kept beyond that.
   */
  write(ino: number, offset: number, data: Buffer): Promise<void>;
  /** Includes unflushed buffered data; zeros for holes; short only at EOF (fileSize). */
  read(ino: number, offset: number, length: number, fileSize: number): Promise<Buffer>;
  /** read() into `target` (up to its length), which may hold garbage; returns the bytes read. */
  readInto(ino: number, offset: number, target: Buffer, fileSize: number): Promise<number>;
  /** Close-to-open: data in S3 (or staged with writeback) and slices committed. */
  flush(ino: number): Promise<void>;
  /**
   * flush that commits size and times with the last slices in one metaserver write; false
   * when it did not (the caller then sets them itself). Optional.
   */
  flushWithAttrs?(ino: number, attrs: FileSizeAndTimes): Promise<boolean>;
  fsync(ino: number): Promise<void>;
  /**
   * O_APPEND (s3adaptor/append.ts): stores `data` and has the metaserver place it at the end
   * of the file as it finds it at commit, whole; resolves with where it landed and, when the
   * store returned it, the inode after. `guess`: where the caller believes the end is (only
   * the objects' layout follows it). NOT_SUPPORTED from an older metaserver. Optional.
   */
  appendAtEnd?(ino: number, data: Buffer, times: { mtimeMs: number; ctimeMs: number }, guess: number): Promise<{ base: number; inode?: Inode }>;
  truncate(ino: number, oldSize: number, newSize: number): Promise<void>;
  /** The inode was just created by this mount: it has no slices yet (spares fetching them). */
  markNew?(ino: number): void;
  /** Drops cached slices/blocks of an inode (another mount may have changed it). */
  invalidate(ino: number): void | Promise<void>;
  deleteObjects(ino: number, slices: Map<number, SliceRecord[]>): Promise<void>;
  flushAll(): Promise<void>;
  /** Resolves when every staged block is in S3. */
  waitUploaded(): Promise<void>;
  /**
   * copy_file_range by reference (S3Adaptor): the destination's new slices read the source's
   * objects, no data moves. Copies min(length, srcSize - srcOffset) bytes and returns that;
   * the caller then sets the destination's size (max(size, dstOffset + copied)) and mtime.
   * INVALID_ARGUMENT for overlapping ranges of one inode. Absent: no reference support (let
   * the kernel fall back to a read/write copy: answer ENOSYS/EOPNOTSUPP).
   */
  copyRange?(srcIno: number, srcOffset: number, dstIno: number, dstOffset: number, length: number, srcSize: number): Promise<number>;
  /** FALLOC_FL_PUNCH_HOLE|KEEP_SIZE: the range (clipped to size) reads as zeros and holds no data. */
  punchHole?(ino: number, offset: number, length: number, size: number): Promise<void>;
  /** FALLOC_FL_ZERO_RANGE (optionally KEEP_SIZE): the range reads as zeros; returns the size the file must have. */
  zeroRange?(ino: number, offset: number, length: number, size: number, keepSize?: boolean): Promise<number>;
  /** fallocate default mode (optionally KEEP_SIZE): nothing to reserve; returns the size the file must have. */
  allocate?(ino: number, offset: number, length: number, size: number, keepSize?: boolean): Promise<number>;
  /** lseek SEEK_DATA; TierfsError BEYOND_EOF (errno ENXIO) at/after size or when no data follows. */
  seekData?(ino: number, offset: number, size: number): Promise<number>;
  /** lseek SEEK_HOLE: the next hole, or size; BEYOND_EOF (ENXIO) at/after size. */
  seekHole?(ino: number, offset: number, size: number): Promise<number>;
  /** Bytes held as data, for st_blocks = ceil(bytes / 512): a sparse file counts only what was written. */
  allocatedBytes?(ino: number): Promise<number>;
  /**
   * allocatedBytes only when the data path has the inode's slices cached (no metaserver read);
   * null otherwise. For replies of many entries at once (readdirplus): fall back to the size.
   */
  cachedAllocatedBytes?(ino: number): number | null;
  /** `tierfs cache warmup`: the file's blocks into the disk cache (`{ group: true }`: into the cache group). */
  warmup(ino: number, fileSize: number, target?: { group?: boolean }): Promise<WarmupResult>;
  /** `tierfs cache evict`: drop cached blocks of one inode or of all (null); staged ones stay (`{ group: true }`: at the cache nodes). */
  evict(ino: number | null, target?: { group?: boolean }): Promise<EvictResult>;
  /** `tierfs cache config`: the disk cache limits, changed first when `changes` has any; null without a disk cache. */
  cacheLimits(changes?: Partial<DiskCacheLimits>): DiskCacheLimits | null;
  /** Counters for `tierfs cache stats` (S3Adaptor: write buffer, disk cache, S3). */
  stats(): object | Promise<object>;
  close(): Promise<void>;
}

/** What S3Adaptor needs to record slices: the metaserver, narrowed. */
export interface SliceStore {
  getSlices(ino: number): Promise<Map<number, SliceRecord[]>>;
  appendSlices(ino: number, added: Map<number, SliceRecord[]>): Promise<Inode | void>;
  appendSlicesAndAttrs?(ino: number, added: Map<number, SliceRecord[]>, attrs: FileSizeAndTimes): Promise<Inode | void>;
  appendRun?(ino: number, run: AppendRun): Promise<{ base: number; inode: Inode }>;
  replaceSlices(ino: number, chunkIndex: number, removed: SliceRecord[], added: SliceRecord[]): Promise<void>;
}

/**
 * Adapts a MetaClient into the SliceStore S3Adaptor takes. The inodes its commits return go
 * to the VFS built on the same MetaClient (coherence.ts): the data path's commits are this
 * mount's own changes, which must not pass for another mount's.
 */
export function sliceStoreOf(meta: MetaClient): SliceStore {
  const reported = async <T>(ino: number, p: Promise<T>): Promise<T> => {
    const r = await p;
    reportOwnCommit(meta, ino, r && typeof r === 'object' && 'base' in r ? (r as { inode?: Inode }).inode : r);
    return r;
  };
  return {
    getSlices: (ino) => meta.getSlices(ino),
    appendSlices: (ino, added) => reported(ino, meta.appendSlices(ino, added)),
    ...(meta.appendSlicesAndAttrs ? { appendSlicesAndAttrs: (ino: number, added: Map<number, SliceRecord[]>, attrs: FileSizeAndTimes) => reported(ino, meta.appendSlicesAndAttrs!(ino, added, attrs)) } : {}),
    ...(meta.appendRun ? { appendRun: (ino: number, run: AppendRun) => reported(ino, meta.appendRun!(ino, run)) } : {}),
    replaceSlices: (ino, chunkIndex, removed, added) => meta.replaceSlices(ino, chunkIndex, removed, added),
  };
}
