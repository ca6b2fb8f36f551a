// What the state machine stores (JSON values in level) and the operations it applies
// (JSON in Raft log entries). Times in operations are chosen by the leader before
// proposing, so every replica applies the same values.
import type { SliceRecord } from './meta-client.js';
import type { AppendRunRequest } from '../s3adaptor/types.js';
import type { StatusCode } from '../common/status.js';
import type { QuotaOp, QuotaRecord } from './quota.js';

export interface PartitionRecord {
  fsId: number;
  poolId: number;
  copysetId: number;
  partitionId: number;
  start: number;
  end: number;
  nextId: number;
  inodeCount: number;
  dentryCount: number;
  usedBytes: number;
  readOnly: boolean;
}

export interface InodeRecord {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  rdev: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  symlink: string;
  parents: number[];
  /** name -> base64 value */
  xattrs: Record<string, string>;
  /**
   * Bytes of data its slices hold (st_blocks), kept as slices are applied; absent on inodes
   * written before it existed until their next slice change (then counted from all chunks).
   */
  allocatedBytes?: number;
  /** Directories: changes of their names so far (absent in records written before it existed). */
  entriesVersion?: number;
  /** Bumped by every change of data or size (absent: 0, a record from before it existed). */
  dataVersion?: number;
}

export interface DentryRecord {
  ino: number;
  type: number;
}

export interface TrashRecord {
  fsId: number;
  ino: number;
  sinceMs: number;
}

export interface RenameTxRecord {
  txId: string;
  srcPool: number;
  srcCopyset: number;
  srcPartition: number;
  srcFs: number;
  srcPeers: string[];
  srcParent: number;
  srcName: string;
  ino: number;
  type: number;
  dstPool: number;
  dstCopyset: number;
  dstPartition: number;
  dstParent: number;
  dstName: string;
  replacedIno: number;
  replacedType: number;
}

/** At the destination: prepared (name locked). At the source: committed or aborted (final). */
export interface TxStateRecord {
  state: 'prepared' | 'committed' | 'aborted';
  tx: RenameTxRecord;
  sinceMs: number;
}

/** A dump fence: until `until` (ms, the leader's clock in the entry) no rename of the fs is prepared here. */
export interface DumpFenceRecord {
  fenceId: string;
  until: number;
}

export interface RequestIdent {
  clientId: string;
  seq: number;
  lowSeq: number;
}

/**
 * Results of a client's requests below its `lowSeq` are dropped by its entries whose seq is a
 * multiple of this (MetaStateMachine.pruneRequests).
 */
export const PRUNE_EVERY = 32;

export interface InodeChanges {
  mask: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  nlinkDelta: number;
  addParent: number;
  removeParent: number;
  touchCtime: boolean;
  /** With SIZE: size = max(current, size) (absent in entries written before it existed). */
  sizeGrowOnly?: boolean;
}

/** An O_APPEND run to place at the end of the file (proto AppendRun). */
export type AppendRunOp = AppendRunRequest;

export const UpdateMask = { MODE: 1, UID: 2, GID: 4, SIZE: 8, ATIME: 16, MTIME: 32, CTIME: 64 } as const;

export type MetaOp =
  | { op: 'createPartition'; partition: Omit<PartitionRecord, 'nextId' | 'inodeCount' | 'dentryCount' | 'usedBytes' | 'readOnly'>; now: number }
  | { op: 'deletePartition'; pid: number }
  | { op: 'createInode'; pid: number; rid?: RequestIdent; mode: number; uid: number; gid: number; rdev: number; symlink: string; parent: number; now: number }
  | { op: 'updateInode'; pid: number; rid?: RequestIdent; ino: number; changes: InodeChanges; now: number }
  | { op: 'deleteInode'; pid: number; rid?: RequestIdent; ino: number }
  | { op: 'createDentry'; pid: number; rid?: RequestIdent; parent: number; name: string; ino: number; type: number; now: number }
  /** createInode in `inodePid` plus createDentry in `pid` as one entry (both partitions in this copyset). */
  | {
      op: 'createNode'; pid: number; inodePid: number; rid?: RequestIdent; parent: number; name: string;
      mode: number; uid: number; gid: number; rdev: number; symlink: string; now: number;
    }
  | { op: 'deleteDentry'; pid: number; rid?: RequestIdent; parent: number; name: string; expectIno: number; now: number }
  | { op: 'setXattr'; pid: number; rid?: RequestIdent; ino: number; name: string; value: string; flags: number; now: number }
  | { op: 'removeXattr'; pid: number; rid?: RequestIdent; ino: number; name: string; now: number }
  | {
      op: 'modifySlices';
      pid: number;
      rid?: RequestIdent;
      ino: number;
      append: Array<[number, SliceRecord[]]>;
      replace: { chunkIndex: number; removed: SliceRecord[]; added: SliceRecord[] } | null;
      /** Set with the slices (absent in entries written before it existed). */
      attrs?: { size: number; mtimeMs: number; ctimeMs: number; growOnly?: boolean };
    }
  /** O_APPEND: the run goes at the end of the file as this entry finds it (apply-append.ts). */
  | { op: 'appendRun'; pid: number; rid?: RequestIdent; ino: number; run: AppendRunOp }
  | { op: 'releaseOrphan'; pid: number; rid?: RequestIdent; ino: number; now: number }
  | { op: 'purgeInode'; pid: number; ino: number }
  | { op: 'prepareRename'; pid: number; rid?: RequestIdent; tx: RenameTxRecord; now: number }
  | { op: 'commitRename'; pid: number; rid?: RequestIdent; tx: RenameTxRecord; now: number }
  | { op: 'finishRename'; pid: number; rid?: RequestIdent; txId: string; commit: boolean; now: number }
  | { op: 'resolveRename'; pid: number; rid?: RequestIdent; txId: string; now: number }
  | { op: 'forgetRenames'; before: number }
  /** Sets (`until` > 0) or lifts (0) the dump fence of filesystem `fsId` (apply-fence.ts). */
  | { op: 'dumpFence'; fsId: number; fenceId: string; until: number; now: number }
  /**
   * unlink (dir false) or rmdir (dir true) as one entry: the name, the parent's times and
   * nlink, and — when the inode lives in this copyset — its nlink and parent list (a file),
   * or its removal (an empty directory). A file whose nlink reaches 0 goes to the trash in
   * the same entry when it is `releaseIno` (the caller holds no open handle on it).
   */
  | { op: 'removeNode'; pid: number; rid?: RequestIdent; parent: number; name: string; dir: boolean; expectIno: number; releaseIno: number; now: number }
  /** A hard link as one entry: the new name plus the inode's nlink and parent list (inode in this copyset). */
  | { op: 'linkNode'; pid: number; rid?: RequestIdent; parent: number; name: string; ino: number; now: number }
  /**
   * rename as one entry when both names live in this copyset (`pid` holds the source name,
   * `dstPid` the destination): both names, both parents, the moved inode's parent list and
   * the replaced inode's nlink (or its removal, an empty directory), when they live here.
   */
  | {
      op: 'renameNode'; pid: number; dstPid: number; rid?: RequestIdent; srcParent: number; srcName: string;
      dstParent: number; dstName: string; ancestryChecked: boolean; releaseIno: number; now: number;
    }
  /** RENAME_EXCHANGE: two existing names swap their inodes, as one entry (both inodes in this copyset). */
  | {
      op: 'exchangeNodes'; pid: number; dstPid: number; rid?: RequestIdent; srcParent: number; srcName: string;
      dstParent: number; dstName: string; ancestryChecked: boolean; now: number;
    }
  /**
   * unlink/rmdir with the recycle bin on, as one entry (apply-trash.ts): the name moves into
   * trash directory `trashDir` (names in partition `trashPid`) under the bin's entry name made
   * from `now`; a file with other names just loses this one.
   */
  | { op: 'trashNode'; pid: number; trashPid: number; rid?: RequestIdent; parent: number; name: string; dir: boolean; trashDir: number; now: number }
  | QuotaOp;

/** The result of applying one operation; recorded per request id for retries. */
export interface OpResult {
  code: StatusCode;
  message?: string;
  inode?: InodeRecord;
  dentry?: { ino: number; type: number };
  /** The parent directory after a createNode, removeNode, renameNode or trashNode (its times and nlink changed). */
  parentInode?: InodeRecord;
  /** renameNode: the destination directory after. */
  dstParentInode?: InodeRecord;
  committed?: boolean;
  /** renameNode: the inodes it moved and replaced, and whether this entry fixed them up too. */
  renamed?: {
    ino: number; type: number; movedDone: boolean;
    replacedIno: number; replacedType: number; replacedNlink: number; replacedDone: boolean;
  };
  /** releaseOrphan or removeNode: the inode went to the trash. */
  released?: boolean;
  /** Quota operations: the quota records after the change (quota.ts). */
  quotas?: QuotaRecord[];
  /** appendRun: the file offset the run's first byte landed at. */
  appendBase?: number;
  /** dumpFence: whether this fence held without a gap up to the entry, and the fs's renames prepared here. */
  fence?: { held: boolean; prepared: number };
  /** trashNode: the entry's name in the trash directory; absent when only a link was dropped. */
  trashEntry?: string;
}
