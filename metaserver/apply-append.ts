// O_APPEND across mounts: a run of bytes already in objects is placed at the end of the file
// as this entry finds it — the end resolved inside the Raft entry, so appends from any number
// of mounts never overwrite one another and each run lands whole (s3adaptor/README.md).
import { StatusCode, TierfsError } from '../common/status.js';
import { appendPieces } from '../s3adaptor/append-layout.js';
import { ApplyContext } from './apply-context.js';
import { allocatedFromAllChunks, nextDataVersion } from './apply-inode.js';
import { chunkDataBytes } from './slice-bytes.js';
import { S_IFMT, S_IFREG, type SliceRecord } from './meta-client.js';
import type { InodeRecord, MetaOp, OpResult } from './records.js';

type Op<K extends MetaOp['op']> = Extract<MetaOp, { op: K }>;

export async function appendRun(ctx: ApplyContext, op: Op<'appendRun'>): Promise<OpResult> {
  const run = op.run;
  if (!(run.len > 0 && run.chunkSize > 0 && run.blockSize > 0 && run.chunkSize % run.blockSize === 0 && run.ownerOffset >= 0)) {
    throw new TierfsError(StatusCode.INVALID_ARGUMENT, `bad append run ${JSON.stringify(run)}`);
  }
  const before = await ctx.inode(op.pid, op.ino);
  if ((before.mode & S_IFMT) !== S_IFREG) throw new TierfsError(StatusCode.INVALID_ARGUMENT, `inode ${op.ino} is not a regular file`);
  const base = before.size;
  if (!Number.isSafeInteger(base + run.len)) throw new TierfsError(StatusCode.INVALID_ARGUMENT, `append of ${run.len} bytes at ${base} passes the largest file size`);
  const pieces = appendPieces(op.ino, base, run);
  // The st_blocks counter moves with the slices, as in modifySlices.
  let allocated = before.allocatedBytes ?? (await allocatedFromAllChunks(ctx, op.pid, op.ino));
  for (const [chunkIndex, added] of pieces) {
    const key = ctx.keys.slices(op.pid, op.ino, chunkIndex);
    const list = (await ctx.tx.getJson<SliceRecord[]>(key)) ?? [];
    const [p] = added as [SliceRecord];
    // Past the end there can be a truncate's zero slice or data another mount flushed before
    // its size: a piece must be newer than all of them, or it would read as them.
    const newer = list.find((s) => s.chunkId >= p.chunkId && s.offset < p.offset + p.len && s.offset + s.len > p.offset);
    if (newer) {
      throw new TierfsError(StatusCode.TX_CONFLICT, `append at ${base} of inode ${op.ino}: chunk ${chunkIndex} holds slice ${newer.chunkId}, not below ${p.chunkId}`);
    }
    const placed = [...list, ...added];
    allocated += chunkDataBytes(placed) - chunkDataBytes(list);
    ctx.tx.putJson(key, placed);
  }
  const after: InodeRecord = {
    ...before, parents: [...before.parents], size: base + run.len, mtimeMs: run.mtimeMs, ctimeMs: run.ctimeMs, dataVersion: nextDataVersion(before),
    allocatedBytes: allocated,
  };
  ctx.putInode(op.pid, after, before);
  return { code: StatusCode.OK, inode: after, appendBase: base };
}
