// Rename with POSIX semantics over the metaserver's rename transactions. Names in one
// partition move in one Raft entry; across partitions the destination is prepared (name
// locked), the source's CommitRename is the commit point, then the destination finishes.
// The moved and replaced inodes' parent lists and nlink are fixed afterwards. Both names in
// one copyset: one RenameNode entry does it all (apply-posix.ts).
import { randomUUID } from 'node:crypto';
import { StatusCode, TierfsError } from '../common/status.js';
import type { RemoteMetaClient } from './client.js';
import { checkName, isElsewhere } from './client.js';
import type { PartitionRoute } from './partition-router.js';
import type * as M from './client-types.js';
import { msgToInode, txToMsg } from './convert.js';
import type { RenameTxRecord } from './records.js';
import { ROOT_INO, S_IFDIR, S_IFMT, type ReleaseOptions, type RenameResult } from './meta-client.js';

const isDir = (type: number) => (type & S_IFMT) === S_IFDIR;

/** INVALID_ARGUMENT when `dir` is `ancestor` or lies below it. */
async function checkNotInside(c: RemoteMetaClient, ancestor: number, dir: number): Promise<void> {
  let cur = dir;
  for (let depth = 0; cur !== ROOT_INO && depth < 4096; depth++) {
    if (cur === ancestor) throw new TierfsError(StatusCode.INVALID_ARGUMENT, `cannot move directory ${ancestor} into its own subtree`);
    const parent = (await c.getInode(cur)).parents[0];
    if (parent === undefined || parent === cur) break;
    cur = parent;
  }
  if (cur === ancestor) throw new TierfsError(StatusCode.INVALID_ARGUMENT, `cannot move directory ${ancestor} into its own subtree`);
}

export async function renameEntry(
  c: RemoteMetaClient, srcParent: number, srcName: string, dstParent: number, dstName: string, opts: ReleaseOptions = {},
): Promise<RenameResult> {
  checkName(srcName);
  checkName(dstName);
  const sr = await c.router.route(srcParent);
  const dr = await c.router.route(dstParent);
  if (sr.poolId === dr.poolId && sr.copysetId === dr.copysetId) {
    const res = await renameInCopyset(c, sr, dr, srcParent, srcName, dstParent, dstName, opts);
    if (res) return res;
  }
  return c.retryConflicts(() => renameOnce(c, srcParent, srcName, dstParent, dstName), 30_000);
}

/**
 * Both names in one copyset: one entry (RenameNode) does the names, both parents and the
 * inodes that live there; what lives elsewhere is fixed after, as in the transaction path.
 * A directory moved under another parent first has its ancestry walked. Null when the entry
 * needs a check only the multi-step path makes (a replaced directory in another copyset).
 */
async function renameInCopyset(
  c: RemoteMetaClient, sr: PartitionRoute, dr: PartitionRoute,
  srcParent: number, srcName: string, dstParent: number, dstName: string, opts: ReleaseOptions,
): Promise<RenameResult | null> {
  const send = (ancestryChecked: boolean) =>
    c.retryConflicts(() => c.call<M.RenameNodeResponse>(sr, 'RenameNode', {
      dst_partition_id: dr.partitionId, src_parent: srcParent, src_name: srcName, dst_parent: dstParent, dst_name: dstName,
      ancestry_checked: ancestryChecked, release_ino: opts.releaseIno ?? 0,
    }, true), 30_000);
  let res: M.RenameNodeResponse;
  try {
    res = await send(false);
  } catch (err) {
    if (!isElsewhere(err)) throw err;
    const src = await c.lookup(srcParent, srcName);
    if (!isDir(src.type) || srcParent === dstParent) return null;
    await checkNotInside(c, src.ino, dstParent);
    try {
      res = await send(true);
    } catch (err2) {
      if (isElsewhere(err2)) return null;
      throw err2;
    }
  }
  const ino = Number(res.ino);
  const parents = [res.src_parent_inode, res.dst_parent_inode].filter((p) => p !== null && p !== undefined).map((p) => msgToInode(p));
  const dirs = parents.length > 0 ? { parents } : {};
  if (!res.moved_done) {
    if (srcParent !== dstParent) await c.updateInode(ino, { remove_parent: srcParent, add_parent: dstParent, touch_ctime: true });
    else await c.updateInode(ino, { touch_ctime: true });
  }
  const replacedIno = Number(res.replaced_ino);
  if (!replacedIno) return { ino, type: res.type, ...dirs };
  let nlink = res.replaced_nlink;
  let released = res.replaced_done && nlink === 0 && opts.releaseIno === replacedIno && !isDir(res.replaced_type);
  if (!res.replaced_done) {
    // Only a file can be replaced here while living elsewhere (a directory is checked there first).
    nlink = (await c.updateInode(replacedIno, { nlink_delta: -1, remove_parent: dstParent, touch_ctime: true })).nlink;
    if (nlink === 0 && opts.releaseIno === replacedIno) {
      await c.releaseOrphan(replacedIno);
      released = true;
    }
  }
  return { ino, type: res.type, ...dirs, replaced: { ino: replacedIno, nlink, type: res.replaced_type }, ...(released ? { released } : {}) };
}

async function renameOnce(c: RemoteMetaClient, srcParent: number, srcName: string, dstParent: number, dstName: string): Promise<RenameResult> {
  const src = await c.lookup(srcParent, srcName);
  if (srcParent === dstParent && srcName === dstName) return { ino: src.ino, type: src.type };
  const dstDir = await c.getInode(dstParent);
  if (!isDir(dstDir.mode)) throw new TierfsError(StatusCode.NOT_DIR, `destination parent ${dstParent} is not a directory`);
  const dst = await c.maybeLookup(dstParent, dstName);
  if (dst) {
    if (dst.ino === src.ino) return { ino: src.ino, type: src.type }; // two links to one inode: POSIX says do nothing
    if (isDir(src.type) && !isDir(dst.type)) throw new TierfsError(StatusCode.NOT_DIR, `${JSON.stringify(dstName)} is not a directory`);
    if (!isDir(src.type) && isDir(dst.type)) throw new TierfsError(StatusCode.IS_DIR, `${JSON.stringify(dstName)} is a directory`);
    if (isDir(dst.type) && (await c.listDentries(dst.ino, '', 1)).length > 0) {
      throw new TierfsError(StatusCode.NOT_EMPTY, `${JSON.stringify(dstName)} is not empty`);
    }
  }
  if (isDir(src.type) && srcParent !== dstParent) await checkNotInside(c, src.ino, dstParent);

  const sr = await c.router.route(srcParent);
  const dr = await c.router.route(dstParent);
  const tx: RenameTxRecord = {
    txId: randomUUID(),
    srcPool: sr.poolId, srcCopyset: sr.copysetId, srcPartition: sr.partitionId, srcFs: sr.fsId, srcPeers: sr.peers,
    srcParent, srcName, ino: src.ino, type: src.type,
    dstPool: dr.poolId, dstCopyset: dr.copysetId, dstPartition: dr.partitionId,
    dstParent, dstName, replacedIno: dst?.ino ?? 0, replacedType: dst?.type ?? 0,
  };
  const msg = txToMsg(tx, dr.fsId);
  const same = sr.partitionId === dr.partitionId && sr.poolId === dr.poolId && sr.copysetId === dr.copysetId;
  if (same) {
    await c.call<M.RenameTxResponse>(sr, 'CommitRename', { tx: msg }, true);
  } else {
    await c.call<M.RenameTxResponse>(dr, 'PrepareRename', { tx: msg }, true);
    try {
      await c.call<M.RenameTxResponse>(sr, 'CommitRename', { tx: msg }, true);
    } catch (err) {
      // A definite refusal aborts; an unknown outcome is left to the destination's resolver.
      if (err instanceof TierfsError && err.code !== StatusCode.UNAVAILABLE && err.code !== StatusCode.TIMEOUT) {
        await c.call(dr, 'FinishRename', { tx_id: tx.txId, commit: false }, true);
      }
      throw err;
    }
    await c.call(dr, 'FinishRename', { tx_id: tx.txId, commit: true }, true);
  }

  // The names moved; now the inodes' own bookkeeping.
  if (srcParent !== dstParent) {
    await c.updateInode(src.ino, { remove_parent: srcParent, add_parent: dstParent, touch_ctime: true });
  } else {
    await c.updateInode(src.ino, { touch_ctime: true });
  }
  if (!dst) return { ino: src.ino, type: src.type };
  const replaced = await c.updateInode(dst.ino, { nlink_delta: isDir(dst.type) ? -2 : -1, remove_parent: dstParent, touch_ctime: true });
  if (isDir(dst.type)) {
    await c.call(await c.router.route(dst.ino), 'DeleteInode', { ino: dst.ino }, true);
  }
  return { ino: src.ino, type: src.type, replaced: { ino: dst.ino, nlink: replaced.nlink, type: dst.type } };
}

/**
 * RENAME_EXCHANGE as one entry (ExchangeNodes). Both names and both inodes must live in one
 * copyset; otherwise NOT_SUPPORTED (no transaction swaps two names across copysets).
 */
export async function exchangeEntries(c: RemoteMetaClient, srcParent: number, srcName: string, dstParent: number, dstName: string): Promise<void> {
  checkName(srcName);
  checkName(dstName);
  const sr = await c.router.route(srcParent);
  const dr = await c.router.route(dstParent);
  if (sr.poolId !== dr.poolId || sr.copysetId !== dr.copysetId) {
    throw new TierfsError(StatusCode.NOT_SUPPORTED, `cannot exchange names of directories ${srcParent} and ${dstParent}: they live in different copysets`);
  }
  const send = (ancestryChecked: boolean) =>
    c.retryConflicts(() => c.call(sr, 'ExchangeNodes', {
      dst_partition_id: dr.partitionId, src_parent: srcParent, src_name: srcName, dst_parent: dstParent, dst_name: dstName, ancestry_checked: ancestryChecked,
    }, true), 30_000);
  try {
    await send(false);
    return;
  } catch (err) {
    if (!isElsewhere(err) || srcParent === dstParent) throw err;
  }
  // A directory changes parent: neither may end up inside itself.
  const [a, b] = await Promise.all([c.lookup(srcParent, srcName), c.lookup(dstParent, dstName)]);
  if (isDir(a.type)) await checkNotInside(c, a.ino, dstParent);
  if (isDir(b.type)) await checkNotInside(c, b.ino, srcParent);
  await send(true);
}
