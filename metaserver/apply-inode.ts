// Applying partition, inode, xattr, slice and trash operations.
import { TierfsError, StatusCode } from '../common/status.js';
import { rangeEnd } from './keys.js';
import { ApplyContext, isDirType } from './apply-context.js';
import type { InodeRecord, MetaOp, OpResult, PartitionRecord, TrashRecord } from './records.js';
import { UpdateMask } from './records.js';
import { ROOT_INO, S_IFDIR, S_IFMT, S_IFREG, type SliceRecord } from './meta-client.js';
import { chunkDataBytes } from './slice-bytes.js';

type Op<K extends MetaOp['op']> = Extract<MetaOp, { op: K }>;
const OK: OpResult = { code: StatusCode.OK };

export async function createPartition(ctx: ApplyContext, op: Op<'createPartition'>): Promise<OpResult> {
  const q = op.partition;
  if (ctx.hasPartition(q.partitionId)) {
    const p = ctx.partition(q.partitionId);
    if (p.fsId === q.fsId && p.start === q.start && p.end === q.end) return OK; // a retried create
    throw new TierfsError(StatusCode.EXISTS, `partition ${q.partitionId} exists with another range`);
  }
  if (!(q.start >= 1 && q.end >= q.start)) throw new TierfsError(StatusCode.INVALID_ARGUMENT, `bad inode range [${q.start}, ${q.end}]`);
  const p: PartitionRecord = { ...q, nextId: q.start, inodeCount: 0, dentryCount: 0, usedBytes: 0, readOnly: false };
  ctx.addPartition(p);
  if (q.start === ROOT_INO) {
    // The partition holding inode 1 carries the filesystem's root directory.
    const root: InodeRecord = {
      ino: ROOT_INO, mode: S_IFDIR | 0o755, uid: 0, gid: 0, size: 0, nlink: 2, rdev: 0,
      atimeMs: op.now, mtimeMs: op.now, ctimeMs: op.now, symlink: '', parents: [ROOT_INO], xattrs: {},
    };
    ctx.putInode(p.partitionId, root, undefined);
    p.nextId = ROOT_INO + 1;
    p.inodeCount = 1;
  }
  return OK;
}

export async function deletePartition(ctx: ApplyContext, op: Op<'deletePartition'>): Promise<OpResult> {
  if (!ctx.hasPartition(op.pid)) return OK;
  const prefix = ctx.keys.partitionData(op.pid);
  for (const key of await ctx.tx.keys(prefix, rangeEnd(prefix))) ctx.tx.del(key);
  ctx.removePartition(op.pid);
  return OK;
}

export async function createInode(ctx: ApplyContext, op: Op<'createInode'>): Promise<OpResult> {
  const p = ctx.partition(op.pid);
  if (p.readOnly || p.nextId > p.end) {
    // readOnly was stored when the last id was handed out.
    throw new TierfsError(StatusCode.READ_ONLY, `partition ${op.pid} has no free inode ids`);
  }
  const ino = p.nextId++;
  if (p.nextId > p.end) p.readOnly = true;
  const dir = isDirType(op.mode);
  const inode: InodeRecord = {
    ino, mode: op.mode, uid: op.uid, gid: op.gid, size: op.symlink ? Buffer.byteLength(op.symlink) : 0,
    nlink: dir ? 2 : 1, rdev: op.rdev, atimeMs: op.now, mtimeMs: op.now, ctimeMs: op.now,
    symlink: op.symlink, parents: op.parent ? [op.parent] : [], xattrs: {},
    ...((op.mode & S_IFMT) === S_IFREG ? { allocatedBytes: 0 } : {}),
  };
  ctx.putInode(op.pid, inode, undefined);
  p.inodeCount++;
  return { code: StatusCode.OK, inode };
}

export async function updateInode(ctx: ApplyContext, op: Op<'updateInode'>): Promise<OpResult> {
  const before = await ctx.inode(op.pid, op.ino);
  const c = op.changes;
  const after: InodeRecord = { ...before, parents: [...before.parents] };
  if (c.mask & UpdateMask.MODE) after.mode = (before.mode & ~0o7777) | (c.mode & 0o7777);
  if (c.mask & UpdateMask.UID) after.uid = c.uid;
  if (c.mask & UpdateMask.GID) after.gid = c.gid;
  if (c.mask & UpdateMask.SIZE) {
    if (isDirType(before.mode)) throw new TierfsError(StatusCode.IS_DIR, `inode ${op.ino} is a directory`);
    after.size = c.sizeGrowOnly ? Math.max(before.size, c.size) : c.size;
    after.dataVersion = nextDataVersion(before);
  }
  if (c.mask & UpdateMask.ATIME) after.atimeMs = c.atimeMs;
  if (c.mask & UpdateMask.MTIME) after.mtimeMs = c.mtimeMs;
  if (c.mask & UpdateMask.CTIME) after.ctimeMs = c.ctimeMs;
  if (c.nlinkDelta) after.nlink = Math.max(0, before.nlink + c.nlinkDelta);
  if (c.removeParent) {
    const i = after.parents.indexOf(c.removeParent);
    if (i >= 0) after.parents.splice(i, 1);
  }
  if (c.addParent) after.parents.push(c.addParent);
  if (c.touchCtime) after.ctimeMs = op.now;
  ctx.putInode(op.pid, after, before);
  return { code: StatusCode.OK, inode: after };
}

export async function deleteInode(ctx: ApplyContext, op: Op<'deleteInode'>): Promise<OpResult> {
  const before = await ctx.maybeInode(op.pid, op.ino);
  if (!before) throw new TierfsError(StatusCode.NOT_FOUND, `inode ${op.ino} not found`);
  await removeInode(ctx, op.pid, before);
  return OK;
}

/** Deletes an inode with its slices and trash record, keeping the partition's counters. */
export async function removeInode(ctx: ApplyContext, pid: number, before: InodeRecord): Promise<void> {
  const p = ctx.partition(pid);
  const slices = ctx.keys.slicesPrefix(pid, before.ino);
  for (const key of await ctx.tx.keys(slices, rangeEnd(slices))) ctx.tx.del(key);
  ctx.tx.del(ctx.keys.trash(pid, before.ino));
  ctx.tx.del(ctx.keys.inode(pid, before.ino));
  p.usedBytes = Math.max(0, p.usedBytes - (isDirType(before.mode) || before.symlink ? 0 : before.size));
  p.inodeCount = Math.max(0, p.inodeCount - 1);
}

export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;

export async function setXattr(ctx: ApplyContext, op: Op<'setXattr'>): Promise<OpResult> {
  const before = await ctx.inode(op.pid, op.ino);
  const exists = Object.hasOwn(before.xattrs, op.name);
  if (op.flags & XATTR_CREATE && exists) throw new TierfsError(StatusCode.EXISTS, `xattr ${op.name} exists`);
  if (op.flags & XATTR_REPLACE && !exists) throw new TierfsError(StatusCode.NO_DATA, `xattr ${op.name} not set`);
  ctx.putInode(op.pid, { ...before, xattrs: { ...before.xattrs, [op.name]: op.value }, ctimeMs: op.now }, before);
  return OK;
}

export async function removeXattr(ctx: ApplyContext, op: Op<'removeXattr'>): Promise<OpResult> {
  const before = await ctx.inode(op.pid, op.ino);
  if (!Object.hasOwn(before.xattrs, op.name)) throw new TierfsError(StatusCode.NO_DATA, `xattr ${op.name} not set`);
  const xattrs = { ...before.xattrs };
  delete xattrs[op.name];
  ctx.putInode(op.pid, { ...before, xattrs, ctimeMs: op.now }, before);
  return OK;
}

// `shared` takes part: a compaction or shadowed-slice drop planned before a copy shared the
// slice must fail (TX_CONFLICT), not go on to delete objects another inode now reads.
const sameSlice = (a: SliceRecord, b: SliceRecord): boolean =>
  a.chunkId === b.chunkId && a.compaction === b.compaction && a.offset === b.offset && a.len === b.len &&
  !!a.shared === !!b.shared && !!a.ref === !!b.ref;

/** The data version after a change of the file's data or size (records.ts InodeRecord.dataVersion). */
export const nextDataVersion = (before: InodeRecord): number => (before.dataVersion ?? 0) + 1;

export async function modifySlices(ctx: ApplyContext, op: Op<'modifySlices'>): Promise<OpResult> {
  const before = await ctx.inode(op.pid, op.ino);
  if (op.attrs && isDirType(before.mode)) throw new TierfsError(StatusCode.IS_DIR, `inode ${op.ino} is a directory`);
  // An inode from before the counter existed is counted once from all of its chunks.
  let allocated = before.allocatedBytes ?? (await allocatedFromAllChunks(ctx, op.pid, op.ino));
  for (const [chunkIndex, added] of op.append) {
    const key = ctx.keys.slices(op.pid, op.ino, chunkIndex);
    const list = (await ctx.tx.getJson<SliceRecord[]>(key)) ?? [];
    const after = [...list, ...added];
    allocated += chunkDataBytes(after) - chunkDataBytes(list);
    ctx.tx.putJson(key, after);
  }
  if (op.replace) {
    const { chunkIndex, removed, added } = op.replace;
    if (added.some((s) => s.shared) && (await ctx.tx.getJson(ctx.keys.trash(op.pid, op.ino)))) {
      // Sharing slices of an inode in the trash would race its object deletion: refuse.
      throw new TierfsError(StatusCode.NOT_FOUND, `inode ${op.ino} is being deleted: its data cannot be shared`);
    }
    const key = ctx.keys.slices(op.pid, op.ino, chunkIndex);
    const list = (await ctx.tx.getJson<SliceRecord[]>(key)) ?? [];
    if (!removed.every((r) => list.some((s) => sameSlice(s, r)))) {
      throw new TierfsError(StatusCode.TX_CONFLICT, `chunk ${chunkIndex} of inode ${op.ino} changed: slices to replace are gone`);
    }
    // The compacted slice takes the place of the oldest removed one, so newer slices stay newer.
    const first = list.findIndex((s) => removed.some((r) => sameSlice(s, r)));
    const kept = list.filter((s) => !removed.some((r) => sameSlice(s, r)));
    const at = list.slice(0, first).filter((s) => !removed.some((r) => sameSlice(s, r))).length;
    kept.splice(at, 0, ...added);
    allocated += chunkDataBytes(kept) - chunkDataBytes(list);
    if (kept.length) ctx.tx.putJson(key, kept);
    else ctx.tx.del(key);
  }
  if (allocated < 0) throw new TierfsError(StatusCode.INTERNAL, `inode ${op.ino}: allocated bytes went negative (${allocated})`);
  const inode: InodeRecord = { ...before, parents: [...before.parents], allocatedBytes: allocated };
  if (op.attrs) {
    const size = op.attrs.growOnly ? Math.max(before.size, op.attrs.size) : op.attrs.size;
    Object.assign(inode, { size, mtimeMs: op.attrs.mtimeMs, ctimeMs: op.attrs.ctimeMs });
  }
  // New data, zero slices or attributes: a change other mounts must see (a compaction is not).
  const changed = !!op.attrs || op.append.some(([, added]) => added.length > 0);
  if (changed) inode.dataVersion = nextDataVersion(before);
  ctx.putInode(op.pid, inode, before);
  return changed ? { code: StatusCode.OK, inode } : OK;
}

/** The allocated-bytes counter of an inode from before it existed: counted from all of its chunks. */
export async function allocatedFromAllChunks(ctx: ApplyContext, pid: number, ino: number): Promise<number> {
  const prefix = ctx.keys.slicesPrefix(pid, ino);
  let bytes = 0;
  for (const key of await ctx.tx.keys(prefix, rangeEnd(prefix))) bytes += chunkDataBytes((await ctx.tx.getJson<SliceRecord[]>(key)) ?? []);
  return bytes;
}

export async function releaseOrphan(ctx: ApplyContext, op: Op<'releaseOrphan'>): Promise<OpResult> {
  const inode = await ctx.maybeInode(op.pid, op.ino);
  if (!inode || inode.nlink > 0) return OK; // gone already, or linked again: nothing to delete
  const record: TrashRecord = { fsId: ctx.partition(op.pid).fsId, ino: op.ino, sinceMs: op.now };
  ctx.tx.putJson(ctx.keys.trash(op.pid, op.ino), record);
  return OK;
}

export async function purgeInode(ctx: ApplyContext, op: Op<'purgeInode'>): Promise<OpResult> {
  const inode = await ctx.maybeInode(op.pid, op.ino);
  ctx.tx.del(ctx.keys.trash(op.pid, op.ino));
  if (inode && inode.nlink === 0) await removeInode(ctx, op.pid, inode);
  return OK;
}
