// MetaDumpService (proto/metadump.proto): streams one filesystem's records of a copyset at one
// applied index, for `tierfs dump`. The leader answers after a read barrier, so the records
// hold every write acknowledged before the call; applies go on while the records stream.
import { once } from 'node:events';
import type * as grpc from '@grpc/grpc-js';
import { loadProto } from '../common/grpc.js';
import { ok, statusOf } from '../common/status.js';
import type { ProtoGrpcType } from '../proto/gen/metadump.js';
import type { DumpCopysetChunk } from '../proto/gen/tierfs/metadump/DumpCopysetChunk.js';
import type { DumpCopysetRequest__Output } from '../proto/gen/tierfs/metadump/DumpCopysetRequest.js';
import type { FenceDumpRequest__Output } from '../proto/gen/tierfs/metadump/FenceDumpRequest.js';
import type { FenceDumpResponse } from '../proto/gen/tierfs/metadump/FenceDumpResponse.js';
import type { CopysetNodeManager } from './copyset-manager.js';
import { encodeFrames } from './snapshot-frames.js';

export function metaDumpService(copysets: Pick<CopysetNodeManager, 'get'>): [grpc.ServiceDefinition, grpc.UntypedServiceImplementation] {
  const svc = loadProto<ProtoGrpcType>('metadump.proto').tierfs.metadump.MetaDumpService.service;
  const dumpCopyset = async (call: grpc.ServerWritableStream<DumpCopysetRequest__Output, DumpCopysetChunk>): Promise<void> => {
    const req = call.request;
    const send = async (chunk: DumpCopysetChunk) => {
      if (!call.write(chunk)) await once(call, 'drain');
    };
    let view;
    try {
      const node = copysets.get(req.pool_id, req.copyset_id);
      view = await node.read(async () => {
        let partitions: number[] = [];
        const at = await node.sm.readAt(() => {
          // Chosen inside the read, so a partition created by an earlier apply is in it.
          partitions = [...node.sm.partitions.values()].filter((p) => p.fsId === req.fs_id).map((p) => p.partitionId).sort((a, b) => a - b);
          const k = node.sm.keys;
          return partitions.flatMap((pid) => [k.allDentriesPrefix(pid), k.inodePrefix(pid), k.allSlicesPrefix(pid)]);
        });
        return { ...at, partitions };
      });
    } catch (err) {
      call.write({ status: statusOf(err) });
      call.end();
      return;
    }
    await send({ status: ok(), applied_index: view.index, term: view.term, partitions: view.partitions });
    for await (const frames of encodeFrames(view.pairs)) {
      if (call.cancelled) break; // leaving the loop releases the snapshot
      await send({ frames });
    }
    call.end();
  };
  // The fence is an entry through the log like any write (apply-fence.ts).
  const fenceDump = async (req: FenceDumpRequest__Output): Promise<FenceDumpResponse> => {
    try {
      const res = await copysets.get(req.pool_id, req.copyset_id).writeOk({
        op: 'dumpFence', fsId: req.fs_id, fenceId: req.fence_id, until: Number(req.until_ms), now: Date.now(),
      });
      return { status: ok(), held: res.fence?.held ?? false, prepared: res.fence?.prepared ?? 0 };
    } catch (err) {
      return { status: statusOf(err) };
    }
  };
  return [svc, {
    FenceDump: (call: grpc.ServerUnaryCall<FenceDumpRequest__Output, FenceDumpResponse>, cb: grpc.sendUnaryData<FenceDumpResponse>) => {
      fenceDump(call.request).then((r) => cb(null, r), (err: unknown) => cb(err instanceof Error ? err : new Error(String(err))));
    },
    DumpCopyset: (call: grpc.ServerWritableStream<DumpCopysetRequest__Output, DumpCopysetChunk>) => {
      dumpCopyset(call).catch((err: unknown) => call.destroy(err instanceof Error ? err : new Error(String(err))));
    },
  }];
}
