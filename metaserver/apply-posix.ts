// Applying unlink, rmdir, link and rename as ONE Raft entry each, when the names and the
// inodes involved live in this copyset (the common case: files are created in their
// parent's partition). Every check a client used to make with separate reads (the name's
// type, a directory's emptiness, the destination's type) is made here, at apply time, so
// the outcome cannot race with another client's change.
//
// When a check needs an inode of another copyset (a directory's emptiness, a hard link's
// target), the entry fails with NOT_SUPPORTED and changes nothing: the client then runs
// the multi-step path (metaserver/README.md). A file inode in another copyset does not stop
// the entry: the names change here and the result says the client still owes the inode its
// nlink/parent-list update (the same order as before: a crash leaves at worst a leak).
import { TierfsError, StatusCode } from '../common/status.js';
import { ApplyContext, isDirType } from './apply-context.js';
import { removeInode } from './apply-inode.js';
import { S_IFMT } from './meta-client.js';
import type { DentryRecord, InodeRecord, MetaOp, OpResult, TrashRecord } from './records.js';

type Op<K extends MetaOp['op']> = Extract<MetaOp, { op: K }>;

const elsewhere = (what: string) => new TierfsError(StatusCode.NOT_SUPPORTED, `${what} lives in another copyset`);

function withoutOne(list: number[], x: number): number[] {
  const out = [...list];
  const i = out.indexOf(x);
  if (i >= 0) out.splice(i, 1);
  return out;
}

/** nlink - 1 and one parent link less for a non-directory; into the trash at 0 when `release`. */
function dropLink(ctx: ApplyContext, pid: number, before: InodeRecord, parent: number, now: number, release: boolean): InodeRecord {
  const after: InodeRecord = { ...before, nlink: before.nlink - 1, parents: withoutOne(before.parents, parent), ctimeMs: now };
  if (after.nlink < 0) throw new TierfsError(StatusCode.INTERNAL, `inode ${before.ino} would have a negative nlink`);
  ctx.putInode(pid, after, before);
  if (after.nlink === 0 && release) {
    const record: TrashRecord = { fsId: ctx.partition(pid).fsId, ino: after.ino, sinceMs: now };
    ctx.tx.putJson(ctx.keys.trash(pid, after.ino), record);
  }
  return after;
}

function dropDentryCount(ctx: ApplyContext, pid: number): void {
  const p = ctx.partition(pid);
  p.dentryCount = Math.max(0, p.dentryCount - 1);
}

export async function removeNode(ctx: ApplyContext, op: Op<'removeNode'>): Promise<OpResult> {
  await ctx.checkUnlocked(op.pid, op.parent, op.name);
  const d = await ctx.dentry(op.pid, op.parent, op.name);
  if (!d) throw new TierfsError(StatusCode.NOT_FOUND, `${JSON.stringify(op.name)} not found in ${op.parent}`);
  if (op.expectIno && d.ino !== op.expectIno) {
    throw new TierfsError(StatusCode.TX_CONFLICT, `${JSON.stringify(op.name)} in ${op.parent} changed while being removed`);
  }
  const dir = isDirType(d.type);
  if (op.dir && !dir) throw new TierfsError(StatusCode.NOT_DIR, `${JSON.stringify(op.name)} is not a directory`);
  if (!op.dir && dir) throw new TierfsError(StatusCode.IS_DIR, `${JSON.stringify(op.name)} is a directory`);
  const ipid = ctx.localPartitionOf(op.pid, d.ino);
  if (dir) {
    if (ipid === undefined) throw elsewhere(`directory ${d.ino}`);
    if (!(await ctx.isEmptyDir(ipid, d.ino))) throw new TierfsError(StatusCode.NOT_EMPTY, `${JSON.stringify(op.name)} is not empty`);
  }
  ctx.tx.del(ctx.keys.dentry(op.pid, op.parent, op.name));
  dropDentryCount(ctx, op.pid);
  await ctx.touchParent(op.pid, op.parent, op.now, dir ? -1 : 0);
  const dentry: DentryRecord = { ino: d.ino, type: d.type };
  const parentInode = await ctx.inode(op.pid, op.parent);
  if (ipid === undefined) return { code: StatusCode.OK, dentry, parentInode };
  const before = await ctx.maybeInode(ipid, d.ino);
  if (!before) return { code: StatusCode.OK, dentry, parentInode }; // a name left pointing nowhere: removing it is all there is
  if (dir) {
    await removeInode(ctx, ipid, before);
    return { code: StatusCode.OK, dentry, inode: { ...before, nlink: 0, parents: [] }, parentInode };
  }
  const after = dropLink(ctx, ipid, before, op.parent, op.now, op.releaseIno === d.ino);
  return { code: StatusCode.OK, dentry, inode: after, released: after.nlink === 0 && op.releaseIno === d.ino, parentInode };
}

export async function linkNode(ctx: ApplyContext, op: Op<'linkNode'>): Promise<OpResult> {
  const ipid = ctx.localPartitionOf(op.pid, op.ino);
  if (ipid === undefined) throw elsewhere(`inode ${op.ino}`);
  const before = await ctx.inode(ipid, op.ino);
  if (isDirType(before.mode)) throw new TierfsError(StatusCode.PERMISSION_DENIED, `cannot hard-link directory ${op.ino}`);
  await ctx.checkUnlocked(op.pid, op.parent, op.name);
  if (await ctx.dentry(op.pid, op.parent, op.name)) throw new TierfsError(StatusCode.EXISTS, `${JSON.stringify(op.name)} exists in ${op.parent}`);
  await ctx.touchParent(op.pid, op.parent, op.now, 0);
  ctx.tx.putJson(ctx.keys.dentry(op.pid, op.parent, op.name), { ino: op.ino, type: before.mode & S_IFMT } satisfies DentryRecord);
  ctx.partition(op.pid).dentryCount++;
  // Re-read: the parent's touch above cannot change a non-directory, but keep one source of truth.
  const cur = await ctx.inode(ipid, op.ino);
  const after: InodeRecord = { ...cur, nlink: cur.nlink + 1, parents: [...cur.parents, op.parent], ctimeMs: op.now };
  ctx.putInode(ipid, after, cur);
  return { code: StatusCode.OK, inode: after };
}

/**
 * The checks renameNode and exchangeNodes start with: neither name is held by a cross-partition
 * rename transaction, and the source name exists (its dentry is returned).
 */
async function sourceOfTwoNames(
  ctx: ApplyContext,
  op: { pid: number; dstPid: number; srcParent: number; srcName: string; dstParent: number; dstName: string },
): Promise<DentryRecord> {
  await ctx.checkUnlocked(op.pid, op.srcParent, op.srcName);
  await ctx.checkUnlocked(op.dstPid, op.dstParent, op.dstName);
  const src = await ctx.dentry(op.pid, op.srcParent, op.srcName);
  if (!src) throw new TierfsError(StatusCode.NOT_FOUND, `${JSON.stringify(op.srcName)} not found in ${op.srcParent}`);
  return src;
}

export async function renameNode(ctx: ApplyContext, op: Op<'renameNode'>): Promise<OpResult> {
  const sp = op.pid;
  const dp = op.dstPid;
  const src = await sourceOfTwoNames(ctx, op);
  const srcDir = isDirType(src.type);
  const noChange = { ino: src.ino, type: src.type, movedDone: true, replacedIno: 0, replacedType: 0, replacedNlink: 0, replacedDone: true };
  if (op.srcParent === op.dstParent && op.srcName === op.dstName) return { code: StatusCode.OK, renamed: noChange };
  const dstDir = await ctx.inode(dp, op.dstParent);
  if (!isDirType(dstDir.mode)) throw new TierfsError(StatusCode.NOT_DIR, `destination parent ${op.dstParent} is not a directory`);
  const dst = await ctx.dentry(dp, op.dstParent, op.dstName);
  // Two names of one inode: POSIX says rename does nothing.
  if (dst?.ino === src.ino) return { code: StatusCode.OK, renamed: noChange };
  let replacedPid: number | undefined;
  if (dst) {
    const dstIsDir = isDirType(dst.type);
    if (srcDir && !dstIsDir) throw new TierfsError(StatusCode.NOT_DIR, `${JSON.stringify(op.dstName)} is not a directory`);
    if (!srcDir && dstIsDir) throw new TierfsError(StatusCode.IS_DIR, `${JSON.stringify(op.dstName)} is a directory`);
    replacedPid = ctx.localPartitionOf(dp, dst.ino);
    if (dstIsDir) {
      if (replacedPid === undefined) throw elsewhere(`directory ${dst.ino}`);
      if (!(await ctx.isEmptyDir(replacedPid, dst.ino))) throw new TierfsError(StatusCode.NOT_EMPTY, `${JSON.stringify(op.dstName)} is not empty`);
    }
  }
  // Moving a directory under another parent must not put it inside itself; the client walks
  // the ancestry (it may span copysets) and says so.
  if (srcDir && op.srcParent !== op.dstParent && !op.ancestryChecked) throw elsewhere(`the ancestry of ${op.dstParent}`);

  // The names and both parents.
  const dirMoved = srcDir && op.srcParent !== op.dstParent ? 1 : 0;
  const dirReplaced = dst && isDirType(dst.type) ? 1 : 0;
  ctx.tx.del(ctx.keys.dentry(sp, op.srcParent, op.srcName));
  dropDentryCount(ctx, sp);
  await ctx.touchParent(sp, op.srcParent, op.now, -dirMoved);
  await ctx.touchParent(dp, op.dstParent, op.now, dirMoved - dirReplaced);
  ctx.tx.putJson(ctx.keys.dentry(dp, op.dstParent, op.dstName), { ino: src.ino, type: src.type } satisfies DentryRecord);
  if (!dst) ctx.partition(dp).dentryCount++;

  // The moved inode: its parent list and ctime.
  const movedPid = ctx.localPartitionOf(sp, src.ino);
  let movedDone = false;
  if (movedPid !== undefined) {
    const before = await ctx.maybeInode(movedPid, src.ino);
    if (before) {
      const parents = op.srcParent === op.dstParent ? [...before.parents] : [...withoutOne(before.parents, op.srcParent), op.dstParent];
      ctx.putInode(movedPid, { ...before, parents, ctimeMs: op.now }, before);
    }
    movedDone = true;
  }

  // The replaced inode: one link less, or gone (an empty directory).
  let replacedNlink = 0;
  let replacedDone = !dst;
  if (dst && replacedPid !== undefined) {
    const before = await ctx.maybeInode(replacedPid, dst.ino);
    if (before && isDirType(before.mode)) {
      await removeInode(ctx, replacedPid, before);
    } else if (before) {
      replacedNlink = dropLink(ctx, replacedPid, before, op.dstParent, op.now, op.releaseIno === dst.ino).nlink;
    }
    replacedDone = true;
  }
  return {
    code: StatusCode.OK,
    renamed: {
      ino: src.ino, type: src.type, movedDone,
      replacedIno: dst?.ino ?? 0, replacedType: dst?.type ?? 0, replacedNlink, replacedDone,
    },
    parentInode: await ctx.inode(sp, op.srcParent),
    dstParentInode: await ctx.inode(dp, op.dstParent),
  };
}

/** Replaces one occurrence of `from` by `to` in a parent list. */
function swapParent(parents: number[], from: number, to: number): number[] {
  const out = [...parents];
  const i = out.indexOf(from);
  if (i >= 0) out[i] = to;
  return out;
}

export async function exchangeNodes(ctx: ApplyContext, op: Op<'exchangeNodes'>): Promise<OpResult> {
  const sp = op.pid;
  const dp = op.dstPid;
  const a = await sourceOfTwoNames(ctx, op);
  const b = await ctx.dentry(dp, op.dstParent, op.dstName);
  if (!b) throw new TierfsError(StatusCode.NOT_FOUND, `${JSON.stringify(op.dstName)} not found in ${op.dstParent}`);
  if (a.ino === b.ino) return { code: StatusCode.OK };
  const aPid = ctx.localPartitionOf(sp, a.ino);
  const bPid = ctx.localPartitionOf(dp, b.ino);
  if (aPid === undefined || bPid === undefined) throw elsewhere(`inode ${aPid === undefined ? a.ino : b.ino}`);
  const moves = op.srcParent !== op.dstParent;
  if (moves && (isDirType(a.type) || isDirType(b.type)) && !op.ancestryChecked) throw elsewhere(`the ancestry of ${op.srcParent} and ${op.dstParent}`);
  ctx.tx.putJson(ctx.keys.dentry(sp, op.srcParent, op.srcName), { ino: b.ino, type: b.type } satisfies DentryRecord);
  ctx.tx.putJson(ctx.keys.dentry(dp, op.dstParent, op.dstName), { ino: a.ino, type: a.type } satisfies DentryRecord);
  // A directory trading places with a non-directory moves a ".." link between the parents.
  const delta = moves ? (isDirType(b.type) ? 1 : 0) - (isDirType(a.type) ? 1 : 0) : 0;
  await ctx.touchParent(sp, op.srcParent, op.now, delta);
  await ctx.touchParent(dp, op.dstParent, op.now, -delta);
  for (const [pid, ino, from, to] of [[aPid, a.ino, op.srcParent, op.dstParent], [bPid, b.ino, op.dstParent, op.srcParent]] as const) {
    const before = await ctx.inode(pid, ino);
    ctx.putInode(pid, { ...before, parents: moves ? swapParent(before.parents, from, to) : [...before.parents], ctimeMs: op.now }, before);
  }
  return { code: StatusCode.OK };
}
