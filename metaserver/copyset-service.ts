// CopysetService (proto/copyset.proto), served by every metaserver.
import type * as grpc from '@grpc/grpc-js';
import { handler, loadProto } from '../common/grpc.js';
import { ok, statusOf, StatusCode, TierfsError } from '../common/status.js';
import type { ProtoGrpcType } from '../proto/gen/copyset.js';
import type { CreateCopysetRequest__Output } from '../proto/gen/tierfs/copyset/CreateCopysetRequest.js';
import type { CopysetRef__Output } from '../proto/gen/tierfs/copyset/CopysetRef.js';
import type { PeerChangeRequest__Output } from '../proto/gen/tierfs/copyset/PeerChangeRequest.js';
import type { CreatePartitionRequest__Output } from '../proto/gen/tierfs/copyset/CreatePartitionRequest.js';
import type { DeletePartitionRequest__Output } from '../proto/gen/tierfs/copyset/DeletePartitionRequest.js';
import { CopysetNode } from './copyset-node.js';
import { type CopysetHolder, addPeer, changePeer, copysetStatus, removePeer, transferLeader } from './copyset-admin.js';

function respond<T extends object>(fn: () => Promise<T>): Promise<T & { status: ReturnType<typeof ok> }> {
  return fn().then(
    (res) => ({ ...res, status: ok() }),
    (err: unknown) => ({ status: statusOf(err) }) as T & { status: ReturnType<typeof ok> },
  );
}

/** Also served by chunkservers, whose copysets hold chunks, not partitions. */
function metaCopyset(manager: CopysetHolder, poolId: number, copysetId: number): CopysetNode {
  const node = manager.get(poolId, copysetId);
  if (!(node instanceof CopysetNode)) throw new TierfsError(StatusCode.NOT_SUPPORTED, `copyset ${node.name} holds chunks, not partitions`);
  return node;
}

export function copysetService(manager: CopysetHolder): [grpc.ServiceDefinition, grpc.UntypedServiceImplementation] {
  const svc = loadProto<ProtoGrpcType>('copyset.proto').tierfs.copyset.CopysetService.service;
  const impl: grpc.UntypedServiceImplementation = {
    CreateCopyset: handler((req: CreateCopysetRequest__Output) =>
      respond(async () => {
        await manager.create(req.pool_id, req.copyset_id, req.peers);
        return {};
      }),
    ),
    DeleteCopyset: handler((req: CopysetRef__Output) =>
      respond(async () => {
        await manager.remove(req.pool_id, req.copyset_id);
        return {};
      }),
    ),
    GetCopysetStatus: handler((req: CopysetRef__Output) =>
      respond(async () => ({ copyset: copysetStatus(manager.get(req.pool_id, req.copyset_id)) })),
    ),
    ListCopysets: handler(() => respond(async () => ({ copysets: manager.list().map(copysetStatus) }))),
    AddPeer: handler((req: PeerChangeRequest__Output) =>
      respond(async () => {
        await addPeer(manager, req.pool_id, req.copyset_id, req.peer);
        return {};
      }),
    ),
    RemovePeer: handler((req: PeerChangeRequest__Output) =>
      respond(async () => {
        await removePeer(manager, req.pool_id, req.copyset_id, req.peer);
        return {};
      }),
    ),
    ChangePeer: handler((req: PeerChangeRequest__Output) =>
      respond(async () => {
        await changePeer(manager, req.pool_id, req.copyset_id, req.peer, req.old_peer);
        return {};
      }),
    ),
    TransferLeader: handler((req: PeerChangeRequest__Output) =>
      respond(async () => {
        await transferLeader(manager, req.pool_id, req.copyset_id, req.peer);
        return {};
      }),
    ),
    CreatePartition: handler((req: CreatePartitionRequest__Output) =>
      respond(async () => {
        const p = req.partition;
        if (!p) throw new TierfsError(StatusCode.INVALID_ARGUMENT, 'no partition given');
        const node = metaCopyset(manager, p.pool_id, p.copyset_id);
        await node.writeOk({
          op: 'createPartition',
          partition: { fsId: p.fs_id, poolId: p.pool_id, copysetId: p.copyset_id, partitionId: p.partition_id, start: p.start, end: p.end },
          now: Date.now(),
        });
        return {};
      }),
    ),
    DeletePartition: handler((req: DeletePartitionRequest__Output) =>
      respond(async () => {
        await metaCopyset(manager, req.pool_id, req.copyset_id).writeOk({ op: 'deletePartition', pid: req.partition_id });
        return {};
      }),
    ),
  };
  return [svc, impl];
}
