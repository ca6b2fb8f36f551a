// The dump fence (issue 16, `tierfs dump` across copysets; dump-fence.ts is the CLI side).
// A rename across copysets changes two copysets at different Raft indexes, so records taken
// from each at its own instant can hold the moved name twice or not at all. While a fence of
// the filesystem holds, PrepareRename (the first step of such a rename, at the destination)
// is refused with TX_CONFLICT, which clients retry; CommitRename and FinishRename of renames
// prepared before go on, so the prepared ones drain. Once no copyset holds a prepared rename
// of the filesystem, none can be in doubt until the fence lapses.
//
// The fence is a replicated record with an expiry in the leader's clock (`now` of the entry,
// the same on every replica), so a dump that dies leaves the filesystem fenced for one lease
// at most.
import { TierfsError, StatusCode } from '../common/status.js';
import type { ApplyContext } from './apply-context.js';
import { rangeEnd } from './keys.js';
import type { DumpFenceRecord, MetaOp, OpResult } from './records.js';

/** Throws TX_CONFLICT while a dump fence of `fsId` holds at `now`. */
export async function checkNotFenced(ctx: ApplyContext, fsId: number, now: number): Promise<void> {
  const fence = await ctx.tx.getJson<DumpFenceRecord>(ctx.keys.dumpFence(fsId));
  if (fence && fence.until > now) {
    throw new TierfsError(StatusCode.TX_CONFLICT, `filesystem ${fsId} is fenced for a dump until ${new Date(fence.until).toISOString()}`);
  }
}

/**
 * Sets, renews or lifts a fence. `held` tells the dump whether its fence was in force without
 * a gap since its previous call: if it lapsed, a rename may have slipped through.
 */
export async function dumpFence(ctx: ApplyContext, op: Extract<MetaOp, { op: 'dumpFence' }>): Promise<OpResult> {
  const key = ctx.keys.dumpFence(op.fsId);
  const before = await ctx.tx.getJson<DumpFenceRecord>(key);
  const held = before?.fenceId === op.fenceId && before.until > op.now;
  if (op.until > 0) ctx.tx.putJson(key, { fenceId: op.fenceId, until: op.until } satisfies DumpFenceRecord);
  else if (before?.fenceId === op.fenceId) ctx.tx.del(key); // another dump's fence stays
  return { code: StatusCode.OK, fence: { held, prepared: await preparedRenames(ctx, op.fsId) } };
}

/**
 * A rename is prepared here from PrepareRename to FinishRename, exactly as long as it holds
 * its destination name's lock; the locks are few (the outcomes under `~x/` stay a day).
 */
async function preparedRenames(ctx: ApplyContext, fsId: number): Promise<number> {
  let n = 0;
  for (const pid of ctx.partitionsOf(fsId)) {
    const prefix = ctx.keys.allLocksPrefix(pid);
    n += (await ctx.tx.keys(prefix, rangeEnd(prefix))).length;
  }
  return n;
}
