// Conversions between proto messages and the records the state machine and MetaClient use.
import type { Inode__Output } from '../proto/gen/tierfs/metaserver/Inode.js';
import type { Inode as InodeMsg } from '../proto/gen/tierfs/metaserver/Inode.js';
import type { Slice, Slice__Output } from '../proto/gen/tierfs/metaserver/Slice.js';
import type { RenameTx, RenameTx__Output } from '../proto/gen/tierfs/metaserver/RenameTx.js';
import type { RequestId__Output } from '../proto/gen/tierfs/metaserver/RequestId.js';
import type { InodeRecord, RenameTxRecord, RequestIdent } from './records.js';
import type { Inode, SliceRecord } from './meta-client.js';

export function inodeToMsg(i: InodeRecord): InodeMsg {
  return {
    ino: i.ino, mode: i.mode, uid: i.uid, gid: i.gid, size: i.size, nlink: i.nlink, rdev: i.rdev,
    atime_ms: i.atimeMs, mtime_ms: i.mtimeMs, ctime_ms: i.ctimeMs, symlink: i.symlink, parents: i.parents,
    xattr_names: Object.keys(i.xattrs ?? {}), xattr_names_known: true,
    allocated_bytes: i.allocatedBytes ?? 0, allocated_bytes_known: i.allocatedBytes !== undefined,
    entries_version: i.entriesVersion ?? 0, data_version: i.dataVersion ?? 0, data_version_known: true,
  };
}

export function msgToInode(m: Inode__Output): Inode {
  return {
    ino: m.ino, mode: m.mode, uid: m.uid, gid: m.gid, size: m.size, nlink: m.nlink, rdev: m.rdev,
    atimeMs: m.atime_ms, mtimeMs: m.mtime_ms, ctimeMs: m.ctime_ms, symlink: m.symlink, parents: m.parents,
    ...(m.xattr_names_known ? { xattrNames: m.xattr_names } : {}),
    ...(m.allocated_bytes_known ? { allocatedBytes: m.allocated_bytes } : {}),
    ...(m.entries_version ? { entriesVersion: m.entries_version } : {}),
    ...(m.data_version_known ? { dataVersion: m.data_version } : {}),
  };
}

export function sliceToMsg(s: SliceRecord): Slice {
  const r = s.ref;
  return {
    chunk_id: s.chunkId, compaction: s.compaction, offset: s.offset, len: s.len, size: s.size, zero: s.zero, shared: !!s.shared,
    ...(r ? { ref: { ino: r.ino, chunk_index: r.chunkIndex, chunk_id: r.chunkId, compaction: r.compaction, offset: r.offset, len: r.len, pos: r.pos, fs_id: r.fsId ?? 0 } } : {}),
    ...(s.refOwned ? { ref_owned: true } : {}),
  };
}

/** The optional fields appear only when set, so plain slices keep their old shape. */
export function msgToSlice(m: Slice__Output): SliceRecord {
  const out: SliceRecord = { chunkId: m.chunk_id, compaction: m.compaction, offset: m.offset, len: m.len, size: m.size, zero: m.zero };
  if (m.shared) out.shared = true;
  const r = m.ref;
  if (r) out.ref = { ino: r.ino, chunkIndex: r.chunk_index, chunkId: r.chunk_id, compaction: r.compaction, offset: r.offset, len: r.len, pos: r.pos, ...(r.fs_id ? { fsId: r.fs_id } : {}) };
  if (r && m.ref_owned) out.refOwned = true;
  return out;
}

export function ridFromMsg(m: RequestId__Output | null): RequestIdent | undefined {
  if (!m || !m.client_id) return undefined;
  return { clientId: m.client_id, seq: m.seq, lowSeq: m.low_seq };
}

export function txFromMsg(m: RenameTx__Output): RenameTxRecord {
  const src = m.src_ref;
  const dst = m.dst_ref;
  return {
    txId: m.tx_id,
    srcPool: src?.pool_id ?? 0, srcCopyset: src?.copyset_id ?? 0, srcPartition: src?.partition_id ?? 0, srcFs: src?.fs_id ?? 0,
    srcPeers: m.src_peers, srcParent: m.src_parent, srcName: m.src_name, ino: m.ino, type: m.type,
    dstPool: dst?.pool_id ?? 0, dstCopyset: dst?.copyset_id ?? 0, dstPartition: dst?.partition_id ?? 0,
    dstParent: m.dst_parent, dstName: m.dst_name, replacedIno: m.replaced_ino, replacedType: m.replaced_type,
  };
}

export function txToMsg(t: RenameTxRecord, fsId: number): RenameTx {
  return {
    tx_id: t.txId,
    src_ref: { pool_id: t.srcPool, copyset_id: t.srcCopyset, partition_id: t.srcPartition, fs_id: t.srcFs },
    src_peers: t.srcPeers, src_parent: t.srcParent, src_name: t.srcName, ino: t.ino, type: t.type,
    dst_ref: { pool_id: t.dstPool, copyset_id: t.dstCopyset, partition_id: t.dstPartition, fs_id: fsId },
    dst_parent: t.dstParent, dst_name: t.dstName, replaced_ino: t.replacedIno, replaced_type: t.replacedType,
  };
}
