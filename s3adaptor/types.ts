// The data layout shared with the gateway and the metaserver (DESIGN.md §2).
import type { Registry } from 'prom-client';
import type { Logger } from '../common/log.js';

/** One write that reached storage: a range of one chunk, stored as block objects. */
export interface Slice {
  chunkId: number;
  compaction: number;
  /** Offset within the chunk. */
  offset: number;
  len: number;
  /** Bytes held in objects (len for data slices, 0 for zero slices). */
  size: number;
  /** A zero slice has no objects: its range reads as zeros (truncate masks). */
  zero: boolean;
  /**
   * Another inode (or this one) reads these objects by reference (copy_file_range): the
   * per-inode deletion paths (trash, shadowed drops, compaction) must leave them alone;
   * only a GC that checks every reference (`tierfs fsck --delete-leaked`) may reclaim them.
   * Set before the first reference commits and never cleared (s3adaptor/README.md).
   */
  shared?: boolean;
  /** A slice made by copy by reference: its bytes are in another slice's objects. */
  ref?: SliceRef;
  /**
   * With ref: the objects it reads are its own — an O_APPEND run placed by the metaserver at
   * commit (append-layout.ts) — so the per-inode deletion paths delete them with it (unless
   * shared). A copy's reference never has it.
   */
  refOwned?: boolean;
}

/**
 * Where a referencing slice's bytes live: the slice that wrote the objects (its inode, chunk
 * index, chunkId, compaction and extent, which fix the objects' keys and boundaries), and the
 * offset in that slice's chunk of this slice's first byte. Always names the slice that owns
 * the objects (a copy of a copy points at the original), so there is one level only.
 */
export interface SliceRef {
  ino: number;
  chunkIndex: number;
  chunkId: number;
  compaction: number;
  /** Extent of the owning slice within its chunk. */
  offset: number;
  len: number;
  /** Chunk offset (in the owner's chunk) that this slice's `offset` reads. */
  pos: number;
  /** The owner's filesystem when it is not this one (a tree loaded by `tierfs load` shares the dumped fs's objects). */
  fsId?: number;
}

/** Size and times a close commits together with the file's last slices. */
export interface FileAttrs {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  /** size = max(current, size): what writes commit (a truncate sets it exactly). */
  growOnly?: boolean;
}

/** An O_APPEND run in objects, to be placed at the end of the file by the store (append-layout.ts). */
export interface AppendRunRequest {
  /** Orders the placed slices: must be above every slice they overlap (else TX_CONFLICT). */
  chunkId: number;
  len: number;
  ownerChunkId: number;
  ownerOffset: number;
  chunkSize: number;
  blockSize: number;
  mtimeMs: number;
  ctimeMs: number;
}

/** Where the run's first byte landed (the store may return more: the metaserver's inode after). */
export interface AppendPlaced {
  base: number;
}

/** chunkIndex -> slices in write order. */
export type ChunkSlices = Map<number, Slice[]>;

/** Implemented by the gateway over the metaserver's GetOrModifyS3ChunkInfo. */
export interface SliceStore {
  /** Fresh from the metaserver. */
  getSlices(ino: number): Promise<ChunkSlices>;
  /** Atomic per call. */
  appendSlices(ino: number, added: Map<number, Slice[]>): Promise<unknown>;
  /** appendSlices that also sets the file's size and times, atomically (optional). */
  appendSlicesAndAttrs?(ino: number, added: Map<number, Slice[]>, attrs: FileAttrs): Promise<unknown>;
  /**
   * O_APPEND: places the run at the end of the file as the store finds it, atomically
   * (optional). TX_CONFLICT when run.chunkId is not above a slice the run would overlap:
   * nothing changed, send it again with a newer id.
   */
  appendRun?(ino: number, run: AppendRunRequest): Promise<AppendPlaced>;
  /** Compaction swap; throws TierfsError TX_CONFLICT if `removed` no longer match. */
  replaceSlices(ino: number, chunkIndex: number, removed: Slice[], added: Slice[]): Promise<void>;
}

/** Hands out globally unique, increasing chunk ids in batches (the MDS implements it). */
export interface ChunkIdAllocator {
  allocate(count: number): Promise<{ start: number; count: number }>;
}

export interface LoggerAndRegistry {
  registry?: Registry;
  logger?: Logger;
}
