// Applying dentry operations and the steps of rename transactions.
//
// Rename: the destination partition is prepared first (its name locked, the change kept
// aside); the source partition's CommitRename entry is the commit point (it removes the
// source name and records the outcome); FinishRename applies or drops the prepared change.
// When both names live in one partition, CommitRename does everything in one entry.
import { TierfsError, StatusCode } from '../common/status.js';
import { ApplyContext, isDirType } from './apply-context.js';
import { rangeEnd } from './keys.js';
import { S_IFMT } from './meta-client.js';
import { createInode } from './apply-inode.js';
import { checkNotFenced } from './apply-fence.js';
import type { DentryRecord, MetaOp, OpResult, RenameTxRecord, TxStateRecord } from './records.js';

type Op<K extends MetaOp['op']> = Extract<MetaOp, { op: K }>;
const OK: OpResult = { code: StatusCode.OK };

export async function createDentry(ctx: ApplyContext, op: Op<'createDentry'>): Promise<OpResult> {
  await ctx.checkUnlocked(op.pid, op.parent, op.name);
  const existing = await ctx.dentry(op.pid, op.parent, op.name);
  if (existing) {
    if (existing.ino === op.ino) return { code: StatusCode.OK, dentry: existing };
    throw new TierfsError(StatusCode.EXISTS, `${JSON.stringify(op.name)} exists in ${op.parent}`);
  }
  await ctx.touchParent(op.pid, op.parent, op.now, isDirType(op.type) ? 1 : 0);
  const d: DentryRecord = { ino: op.ino, type: op.type };
  ctx.tx.putJson(ctx.keys.dentry(op.pid, op.parent, op.name), d);
  ctx.partition(op.pid).dentryCount++;
  return { code: StatusCode.OK, dentry: d };
}

/**
 * A new inode and its name in one entry: one Raft commit per create instead of two, and no
 * window in which the inode exists without a name. EXISTS (nothing changed) when the name is taken.
 */
export async function createNode(ctx: ApplyContext, op: Op<'createNode'>): Promise<OpResult> {
  await ctx.checkUnlocked(op.pid, op.parent, op.name);
  const existing = await ctx.dentry(op.pid, op.parent, op.name);
  if (existing) throw new TierfsError(StatusCode.EXISTS, `${JSON.stringify(op.name)} exists in ${op.parent}`);
  const created = await createInode(ctx, { ...op, op: 'createInode', pid: op.inodePid });
  const inode = created.inode!;
  await ctx.touchParent(op.pid, op.parent, op.now, isDirType(op.mode) ? 1 : 0);
  ctx.tx.putJson(ctx.keys.dentry(op.pid, op.parent, op.name), { ino: inode.ino, type: op.mode & S_IFMT } satisfies DentryRecord);
  ctx.partition(op.pid).dentryCount++;
  return { code: StatusCode.OK, inode, parentInode: await ctx.inode(op.pid, op.parent) };
}

export async function deleteDentry(ctx: ApplyContext, op: Op<'deleteDentry'>): Promise<OpResult> {
  await ctx.checkUnlocked(op.pid, op.parent, op.name);
  const existing = await ctx.dentry(op.pid, op.parent, op.name);
  if (!existing) throw new TierfsError(StatusCode.NOT_FOUND, `${JSON.stringify(op.name)} not found in ${op.parent}`);
  if (op.expectIno && existing.ino !== op.expectIno) {
    throw new TierfsError(StatusCode.TX_CONFLICT, `${JSON.stringify(op.name)} in ${op.parent} changed while being removed`);
  }
  await ctx.touchParent(op.pid, op.parent, op.now, isDirType(existing.type) ? -1 : 0);
  ctx.tx.del(ctx.keys.dentry(op.pid, op.parent, op.name));
  const p = ctx.partition(op.pid);
  p.dentryCount = Math.max(0, p.dentryCount - 1);
  return { code: StatusCode.OK, dentry: existing };
}

/** The destination name must still be what the client saw: free, or the inode it plans to replace. */
async function checkDestination(ctx: ApplyContext, tx: RenameTxRecord): Promise<DentryRecord | undefined> {
  const dst = await ctx.dentry(tx.dstPartition, tx.dstParent, tx.dstName);
  if ((dst?.ino ?? 0) !== tx.replacedIno) {
    throw new TierfsError(StatusCode.TX_CONFLICT, `${JSON.stringify(tx.dstName)} in ${tx.dstParent} changed during rename`);
  }
  return dst;
}

/** Puts the moved name at the destination and fixes the destination parent's times and nlink. */
async function applyDestination(ctx: ApplyContext, tx: RenameTxRecord, now: number): Promise<void> {
  const pid = tx.dstPartition;
  const dirMoved = isDirType(tx.type) && tx.srcParent !== tx.dstParent ? 1 : 0;
  const dirReplaced = tx.replacedIno && isDirType(tx.replacedType) ? 1 : 0;
  await ctx.touchParent(pid, tx.dstParent, now, dirMoved - dirReplaced);
  ctx.tx.putJson(ctx.keys.dentry(pid, tx.dstParent, tx.dstName), { ino: tx.ino, type: tx.type } satisfies DentryRecord);
  if (!tx.replacedIno) ctx.partition(pid).dentryCount++;
}

export async function prepareRename(ctx: ApplyContext, op: Op<'prepareRename'>): Promise<OpResult> {
  const tx = op.tx;
  const key = ctx.keys.txDestination(tx.txId);
  const state = await ctx.tx.getJson<TxStateRecord>(key);
  if (state) return { code: StatusCode.OK };
  await checkNotFenced(ctx, tx.srcFs, op.now);
  await ctx.checkUnlocked(tx.dstPartition, tx.dstParent, tx.dstName);
  await checkDestination(ctx, tx);
  await ctx.inode(tx.dstPartition, tx.dstParent);
  ctx.tx.put(ctx.keys.lock(tx.dstPartition, tx.dstParent, tx.dstName), tx.txId);
  ctx.tx.putJson(key, { state: 'prepared', tx, sinceMs: op.now } satisfies TxStateRecord);
  return OK;
}

export async function commitRename(ctx: ApplyContext, op: Op<'commitRename'>): Promise<OpResult> {
  const tx = op.tx;
  const key = ctx.keys.txSource(tx.txId);
  const state = await ctx.tx.getJson<TxStateRecord>(key);
  if (state?.state === 'committed') return { code: StatusCode.OK, committed: true };
  if (state?.state === 'aborted') throw new TierfsError(StatusCode.TX_CONFLICT, `rename ${tx.txId} was aborted`);
  const samePartition = tx.srcPartition === tx.dstPartition && tx.srcPool === tx.dstPool && tx.srcCopyset === tx.dstCopyset;
  await ctx.checkUnlocked(tx.srcPartition, tx.srcParent, tx.srcName);
  const src = await ctx.dentry(tx.srcPartition, tx.srcParent, tx.srcName);
  if (!src || src.ino !== tx.ino) {
    throw new TierfsError(StatusCode.TX_CONFLICT, `${JSON.stringify(tx.srcName)} in ${tx.srcParent} changed during rename`);
  }
  if (samePartition) {
    await ctx.checkUnlocked(tx.dstPartition, tx.dstParent, tx.dstName);
    await checkDestination(ctx, tx);
  }
  const dirMovedAway = isDirType(tx.type) && tx.srcParent !== tx.dstParent ? -1 : 0;
  ctx.tx.del(ctx.keys.dentry(tx.srcPartition, tx.srcParent, tx.srcName));
  const p = ctx.partition(tx.srcPartition);
  p.dentryCount = Math.max(0, p.dentryCount - 1);
  await ctx.touchParent(tx.srcPartition, tx.srcParent, op.now, dirMovedAway);
  if (samePartition) {
    await applyDestination(ctx, tx, op.now);
  } else {
    // The outcome stays recorded so the destination can learn it after a client crash.
    ctx.tx.putJson(key, { state: 'committed', tx, sinceMs: op.now } satisfies TxStateRecord);
  }
  return { code: StatusCode.OK, committed: true };
}

export async function finishRename(ctx: ApplyContext, op: Op<'finishRename'>): Promise<OpResult> {
  const key = ctx.keys.txDestination(op.txId);
  const state = await ctx.tx.getJson<TxStateRecord>(key);
  if (!state || state.state !== 'prepared') return { code: StatusCode.OK, committed: op.commit }; // finished already
  const tx = state.tx;
  ctx.tx.del(ctx.keys.lock(tx.dstPartition, tx.dstParent, tx.dstName));
  ctx.tx.del(key);
  if (op.commit) await applyDestination(ctx, tx, op.now);
  return { code: StatusCode.OK, committed: op.commit };
}

/** At the source: the final outcome; a transaction not committed yet is aborted for good. */
export async function resolveRename(ctx: ApplyContext, op: Op<'resolveRename'>): Promise<OpResult> {
  const key = ctx.keys.txSource(op.txId);
  const state = await ctx.tx.getJson<TxStateRecord>(key);
  if (state?.state === 'committed') return { code: StatusCode.OK, committed: true };
  if (!state) {
    const placeholder: RenameTxRecord = {
      txId: op.txId, srcPool: 0, srcCopyset: 0, srcPartition: op.pid, srcFs: 0, srcPeers: [], srcParent: 0, srcName: '',
      ino: 0, type: 0, dstPool: 0, dstCopyset: 0, dstPartition: 0, dstParent: 0, dstName: '', replacedIno: 0, replacedType: 0,
    };
    ctx.tx.putJson(key, { state: 'aborted', tx: placeholder, sinceMs: op.now } satisfies TxStateRecord);
  }
  return { code: StatusCode.OK, committed: false };
}

/**
 * Drops source-side outcomes recorded before `before`. A destination still holding such a
 * transaction prepared would then see it aborted, so the retention must be far longer than
 * any copyset outage one expects to survive (default a day).
 */
export async function forgetRenames(ctx: ApplyContext, op: Op<'forgetRenames'>): Promise<OpResult> {
  const prefix = ctx.keys.txPrefix();
  for (const key of await ctx.tx.keys(prefix, rangeEnd(prefix))) {
    if (!key.endsWith('/src')) continue;
    const rec = await ctx.tx.getJson<TxStateRecord>(key);
    if (rec && rec.sinceMs < op.before) ctx.tx.del(key);
  }
  return OK;
}
