// unlink and rmdir with the recycle bin on, as ONE Raft entry (issue 12). The mount used to
// look the name up, read the inode for its nlink, check the bin's entry name was free and then
// rename, four round trips, and when the bin lived in another copyset than the name a rename
// transaction of four entries. Here the entry decides what the mount decided: a file with
// other names loses this one (removeNode), anything else moves into the trash directory under
// the bin's entry name (trash-bin.ts), which is made from the entry's own time, so every
// replica names it the same. The trash directory must have its names in this copyset: the
// mount keeps one per copyset (metaserver/trash-shards.ts).
import { StatusCode, TierfsError } from '../common/status.js';
import { ApplyContext, isDirType } from './apply-context.js';
import { removeNode, renameNode } from './apply-posix.js';
import type { MetaOp, OpResult } from './records.js';
import { TRASH_NAME_XATTR, trashEntryName } from './trash-bin.js';

type Op<K extends MetaOp['op']> = Extract<MetaOp, { op: K }>;

const elsewhere = (what: string) => new TierfsError(StatusCode.NOT_SUPPORTED, `${what} lives in another copyset`);

export async function trashNode(ctx: ApplyContext, op: Op<'trashNode'>): Promise<OpResult> {
  // A bin directory gone or elsewhere: the client finds its shard again, or renames the old way.
  if (!ctx.hasPartition(op.trashPid)) throw elsewhere(`trash directory ${op.trashDir}`);
  const bin = await ctx.maybeInode(op.trashPid, op.trashDir);
  if (!bin || !isDirType(bin.mode)) throw elsewhere(`trash directory ${op.trashDir}`);
  await ctx.checkUnlocked(op.pid, op.parent, op.name);
  const d = await ctx.dentry(op.pid, op.parent, op.name);
  if (!d) throw new TierfsError(StatusCode.NOT_FOUND, `${JSON.stringify(op.name)} not found in ${op.parent}`);
  const dir = isDirType(d.type);
  if (op.dir && !dir) throw new TierfsError(StatusCode.NOT_DIR, `${JSON.stringify(op.name)} is not a directory`);
  if (!op.dir && dir) throw new TierfsError(StatusCode.IS_DIR, `${JSON.stringify(op.name)} is a directory`);
  // The bin keeps an inode by its name there, so the inode must be where this entry can move it.
  const ipid = ctx.localPartitionOf(op.pid, d.ino);
  if (ipid === undefined) throw elsewhere(`inode ${d.ino}`);
  const before = await ctx.inode(ipid, d.ino);
  if (!dir && before.nlink > 1) {
    // Its data stays reachable through the other names: no bin entry.
    return removeNode(ctx, { op: 'removeNode', pid: op.pid, parent: op.parent, name: op.name, dir: false, expectIno: d.ino, releaseIno: 0, now: op.now });
  }
  // An empty directory is never an ancestor of the trash directory, so the move needs no ancestry walk.
  if (dir && !(await ctx.isEmptyDir(ipid, d.ino))) throw new TierfsError(StatusCode.NOT_EMPTY, `${JSON.stringify(op.name)} is not empty`);
  const { entry, truncated } = trashEntryName(op.now, op.parent, d.ino, op.name);
  if (await ctx.dentry(op.trashPid, op.trashDir, entry)) throw new TierfsError(StatusCode.EXISTS, `recycle bin entry ${entry} exists`);
  const moved = await renameNode(ctx, {
    op: 'renameNode', pid: op.pid, dstPid: op.trashPid, srcParent: op.parent, srcName: op.name,
    dstParent: op.trashDir, dstName: entry, ancestryChecked: true, releaseIno: 0, now: op.now,
  });
  let after = await ctx.inode(ipid, d.ino);
  if (truncated) {
    // The whole name, for `tierfs trash list` and restore (the entry name had to cut it).
    const named = { ...after, xattrs: { ...after.xattrs, [TRASH_NAME_XATTR]: Buffer.from(op.name).toString('base64') } };
    ctx.putInode(ipid, named, after);
    after = named;
  }
  return { code: StatusCode.OK, inode: after, trashEntry: entry, ...(moved.parentInode ? { parentInode: moved.parentInode } : {}) };
}
