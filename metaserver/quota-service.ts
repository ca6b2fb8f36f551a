// The quota RPCs of MetaServerService (proto/metaserver.proto, "quotas"): writes through the
// copyset's Raft log (quota.ts), ListQuota on the leader after its read barrier.
import type * as grpc from '@grpc/grpc-js';
import { handler } from '../common/grpc.js';
import { ok, statusOf, StatusCode, TierfsError } from '../common/status.js';
import type { PartitionRef__Output } from '../proto/gen/tierfs/metaserver/PartitionRef.js';
import type { Quota } from '../proto/gen/tierfs/metaserver/Quota.js';
import type { QuotaListResponse } from '../proto/gen/tierfs/metaserver/QuotaListResponse.js';
import type { SetQuotaRequest__Output } from '../proto/gen/tierfs/metaserver/SetQuotaRequest.js';
import type { DeleteQuotaRequest__Output } from '../proto/gen/tierfs/metaserver/DeleteQuotaRequest.js';
import type { AddQuotaUsageRequest__Output } from '../proto/gen/tierfs/metaserver/AddQuotaUsageRequest.js';
import type { ListQuotaRequest__Output } from '../proto/gen/tierfs/metaserver/ListQuotaRequest.js';
import type { CopysetNode } from './copyset-node.js';
import { ridFromMsg } from './convert.js';
import { listQuotas, type QuotaRecord } from './quota.js';

export function quotaToMsg(q: QuotaRecord): Quota {
  return { ino: q.ino, max_bytes: q.maxBytes, max_inodes: q.maxInodes, used_bytes: q.usedBytes, used_inodes: q.usedInodes, path: q.path };
}

function answer(fn: () => Promise<QuotaRecord[]>): Promise<QuotaListResponse> {
  return fn().then(
    (quotas) => ({ status: ok(), quotas: quotas.map(quotaToMsg) }),
    (err: unknown) => ({ status: statusOf(err), quotas: [] }),
  );
}

export function quotaHandlers(nodeOf: (ref: PartitionRef__Output | null) => CopysetNode): grpc.UntypedServiceImplementation {
  const pidOf = (ref: PartitionRef__Output | null): number => ref?.partition_id ?? 0;
  const written = async (node: CopysetNode, op: Parameters<CopysetNode['write']>[0]): Promise<QuotaRecord[]> => {
    const res = await node.write(op);
    if (res.code !== StatusCode.OK) throw new TierfsError(res.code, res.message ?? res.code);
    return res.quotas ?? [];
  };
  return {
    SetQuota: handler((req: SetQuotaRequest__Output) =>
      answer(async () => {
        const q = req.quota;
        if (!q) throw new TierfsError(StatusCode.INVALID_ARGUMENT, 'no quota given');
        return written(nodeOf(req.ref), {
          op: 'setQuota', pid: pidOf(req.ref), rid: ridFromMsg(req.rid), setUsage: req.set_usage, keepLimits: req.keep_limits,
          quota: { ino: q.ino, maxBytes: q.max_bytes, maxInodes: q.max_inodes, usedBytes: q.used_bytes, usedInodes: q.used_inodes, path: q.path },
        });
      }),
    ),
    DeleteQuota: handler((req: DeleteQuotaRequest__Output) =>
      answer(() => written(nodeOf(req.ref), { op: 'deleteQuota', pid: pidOf(req.ref), rid: ridFromMsg(req.rid), ino: req.ino })),
    ),
    AddQuotaUsage: handler((req: AddQuotaUsageRequest__Output) =>
      answer(() => written(nodeOf(req.ref), {
        op: 'addQuotaUsage', pid: pidOf(req.ref), rid: ridFromMsg(req.rid),
        deltas: req.deltas.map((d) => ({ ino: d.ino, bytes: d.bytes, inodes: d.inodes })),
      })),
    ),
    ListQuota: handler((req: ListQuotaRequest__Output) =>
      answer(async () => {
        const node = nodeOf(req.ref);
        return node.read(() => listQuotas(node.sm, pidOf(req.ref)));
      }),
    ),
  };
}
