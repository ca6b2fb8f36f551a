// Directory quotas in the state machine (issue 16). All quota records of a filesystem live in
// the partition holding its root inode, under `{partition}/q/{ino}`, so they travel with that
// partition's snapshot and go with it. Limits and usage change only through the Raft log, so
// every replica holds the same usage and a restarted (or kill -9'd) metaserver replays it
// exactly. The deltas come from the mounts (gateway/quota-tracker.ts) after each change.
import { StatusCode, TierfsError } from '../common/status.js';
import { ROOT_INO } from './meta-client.js';
import { rangeEnd, type CopysetKeys } from './keys.js';
import type { ApplyContext } from './apply-context.js';
import type { MetaStateMachine } from './state-machine.js';
import type { OpResult, RequestIdent } from './records.js';

export interface QuotaRecord {
  ino: number;
  /** 0 = no limit. */
  maxBytes: number;
  maxInodes: number;
  usedBytes: number;
  usedInodes: number;
  /** The path given when it was set (shown by `quota list`). */
  path: string;
}

export interface QuotaDelta {
  ino: number;
  bytes: number;
  inodes: number;
}

export type QuotaOp =
  | { op: 'setQuota'; pid: number; rid?: RequestIdent; quota: QuotaRecord; setUsage: boolean; keepLimits: boolean }
  | { op: 'deleteQuota'; pid: number; rid?: RequestIdent; ino: number }
  | { op: 'addQuotaUsage'; pid: number; rid?: RequestIdent; deltas: QuotaDelta[] };

type Op<K extends QuotaOp['op']> = Extract<QuotaOp, { op: K }>;

const hex16 = (n: number): string => n.toString(16).padStart(16, '0');

export function quotaPrefix(keys: CopysetKeys, pid: number): string {
  return `${keys.partitionData(pid)}q/`;
}

function quotaKey(keys: CopysetKeys, pid: number, ino: number): string {
  return `${quotaPrefix(keys, pid)}${hex16(ino)}`;
}

/** Quotas are kept only by the partition of the root inode: anywhere else is a routing bug. */
function checkRootPartition(ctx: ApplyContext, pid: number): void {
  const p = ctx.partition(pid);
  if (ROOT_INO < p.start || ROOT_INO > p.end) {
    throw new TierfsError(StatusCode.INVALID_ARGUMENT, `partition ${pid} does not hold the root inode; quotas live there`);
  }
}

function checkLimit(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new TierfsError(StatusCode.INVALID_ARGUMENT, `${what} ${n}: must be an integer >= 0`);
}

async function allQuotas(ctx: ApplyContext, pid: number): Promise<QuotaRecord[]> {
  const prefix = quotaPrefix(ctx.keys, pid);
  const out: QuotaRecord[] = [];
  for (const key of await ctx.tx.keys(prefix, rangeEnd(prefix))) {
    const q = await ctx.tx.getJson<QuotaRecord>(key);
    if (q) out.push(q);
  }
  return out;
}

export async function setQuota(ctx: ApplyContext, op: Op<'setQuota'>): Promise<OpResult> {
  checkRootPartition(ctx, op.pid);
  const q = op.quota;
  checkLimit(q.maxBytes, 'max bytes');
  checkLimit(q.maxInodes, 'max inodes');
  if (!(q.ino >= 1)) throw new TierfsError(StatusCode.INVALID_ARGUMENT, `quota on inode ${q.ino}`);
  const key = quotaKey(ctx.keys, op.pid, q.ino);
  const before = await ctx.tx.getJson<QuotaRecord>(key);
  if (!before && op.keepLimits) throw new TierfsError(StatusCode.NOT_FOUND, `no quota on inode ${q.ino}`);
  const after: QuotaRecord = {
    ino: q.ino,
    maxBytes: op.keepLimits && before ? before.maxBytes : q.maxBytes,
    maxInodes: op.keepLimits && before ? before.maxInodes : q.maxInodes,
    usedBytes: op.setUsage || !before ? q.usedBytes : before.usedBytes,
    usedInodes: op.setUsage || !before ? q.usedInodes : before.usedInodes,
    path: q.path || before?.path || '',
  };
  ctx.tx.putJson(key, after);
  return { code: StatusCode.OK, quotas: [after] };
}

export async function deleteQuota(ctx: ApplyContext, op: Op<'deleteQuota'>): Promise<OpResult> {
  checkRootPartition(ctx, op.pid);
  const key = quotaKey(ctx.keys, op.pid, op.ino);
  if (!(await ctx.tx.getJson<QuotaRecord>(key))) throw new TierfsError(StatusCode.NOT_FOUND, `no quota on inode ${op.ino}`);
  ctx.tx.del(key);
  return { code: StatusCode.OK, quotas: [] };
}

/** Adds each delta to its quota's usage; answers every quota of the filesystem after it. */
export async function addQuotaUsage(ctx: ApplyContext, op: Op<'addQuotaUsage'>): Promise<OpResult> {
  checkRootPartition(ctx, op.pid);
  for (const d of op.deltas) {
    const key = quotaKey(ctx.keys, op.pid, d.ino);
    const q = await ctx.tx.getJson<QuotaRecord>(key);
    if (!q) continue; // deleted meanwhile
    ctx.tx.putJson(key, { ...q, usedBytes: q.usedBytes + d.bytes, usedInodes: q.usedInodes + d.inodes });
  }
  return { code: StatusCode.OK, quotas: await allQuotas(ctx, op.pid) };
}

/** Every quota record of the partition (read on the leader after its read barrier). */
export async function listQuotas(sm: MetaStateMachine, pid: number): Promise<QuotaRecord[]> {
  const p = sm.partitions.get(pid);
  if (!p) throw new TierfsError(StatusCode.NOT_FOUND, `partition ${pid} is not in copyset ${sm.keys.poolId}.${sm.keys.copysetId}`);
  const prefix = quotaPrefix(sm.keys, pid);
  const out: QuotaRecord[] = [];
  for await (const value of sm.db.values({ gte: prefix, lt: rangeEnd(prefix) })) out.push(JSON.parse(value) as QuotaRecord);
  return out;
}

export const QUOTA_HANDLERS = { setQuota, deleteQuota, addQuotaUsage };
