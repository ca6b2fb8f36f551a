// ChunkService (proto/chunk.proto): writes through the copyset's log, reads on the leader
// under its lease. Every answer carries the copyset's epoch, peers and leader, so a client
// that was redirected (NOT_LEADER, STALE_EPOCH) updates its cache without asking the MDS.
import type * as grpc from '@grpc/grpc-js';
import type { Counter } from 'prom-client';
import { handler, loadProto } from '../common/grpc.js';
import { ok, statusOf, StatusCode, TierfsError } from '../common/status.js';
import type { ProtoGrpcType } from '../proto/gen/chunk.js';
import type { ChunkRequest__Output } from '../proto/gen/tierfs/chunk/ChunkRequest.js';
import type { ChunkResponse } from '../proto/gen/tierfs/chunk/ChunkResponse.js';
import { BLOCK, encodeDelete, encodeWrite, encodeWritev } from './chunk-state.js';
import type { ChunkCopyset, ChunkCopysetManager } from './copysets.js';

const bad = (m: string) => new TierfsError(StatusCode.INVALID_ARGUMENT, m);

function view(cs: ChunkCopyset | null): Pick<ChunkResponse, 'epoch' | 'peers' | 'leader'> {
  if (!cs) return { epoch: 0, peers: [], leader: '' };
  const st = cs.group.status();
  return { epoch: st.epoch, peers: st.voters, leader: st.leader ?? '' };
}

/** The copyset, when this server leads it and the client's epoch is not older than ours. */
function leading(manager: ChunkCopysetManager, req: ChunkRequest__Output): ChunkCopyset {
  const cs = manager.get(req.pool_id, req.copyset_id);
  if (!cs.group.isLeader()) throw new TierfsError(StatusCode.NOT_LEADER, `not the leader of copyset ${cs.name}`, cs.group.leaderAddress() ?? '');
  const epoch = cs.group.status().epoch;
  if (req.epoch > 0 && req.epoch < epoch) throw new TierfsError(StatusCode.STALE_EPOCH, `copyset ${cs.name} is at epoch ${epoch}, the request names ${req.epoch}`, manager.selfAddress);
  return cs;
}

function checkRange(cs: ChunkCopyset, offset: number, length: number): void {
  if (offset % BLOCK !== 0 || length % BLOCK !== 0) throw bad(`offset ${offset} and length ${length} must be multiples of ${BLOCK}`);
  if (length === 0) throw bad('length is 0');
  if (offset + length > cs.sm.chunkSize) throw bad(`range ${offset}+${length} goes past the chunk size ${cs.sm.chunkSize}`);
}

export function chunkService(manager: ChunkCopysetManager, ops?: Counter<'op' | 'code'>): [grpc.ServiceDefinition, grpc.UntypedServiceImplementation] {
  const svc = loadProto<ProtoGrpcType>('chunk.proto').tierfs.chunk.ChunkService.service;
  const serve = (op: string, fn: (req: ChunkRequest__Output) => Promise<Partial<ChunkResponse>>) =>
    handler(async (req: ChunkRequest__Output): Promise<ChunkResponse> => {
      let cs: ChunkCopyset | null = null;
      try {
        cs = manager.has(req.pool_id, req.copyset_id) ? manager.get(req.pool_id, req.copyset_id) : null;
        const res = await fn(req);
        ops?.inc({ op, code: StatusCode.OK });
        return { ...res, ...view(cs), status: ok() };
      } catch (err) {
        const status = statusOf(err);
        ops?.inc({ op, code: status.code });
        return { ...view(cs), status };
      }
    });
  const impl: grpc.UntypedServiceImplementation = {
    WriteChunk: serve('write', async (req) => {
      const cs = leading(manager, req);
      checkRange(cs, req.offset, req.data.length);
      await cs.group.propose(encodeWrite(req.chunk_id, req.offset, req.data));
      return {};
    }),
    WriteChunks: serve('writev', async (req) => {
      const cs = leading(manager, req);
      if (req.writes.length === 0) throw bad('WriteChunks without writes');
      for (const w of req.writes) checkRange(cs, w.offset, w.data.length);
      await cs.group.propose(encodeWritev(req.writes.map((w) => ({ chunkId: w.chunk_id, offset: w.offset, data: w.data }))));
      return {};
    }),
    ReadChunk: serve('read', async (req) => {
      const cs = leading(manager, req);
      checkRange(cs, req.offset, req.length);
      await cs.group.readBarrier();
      return { data: await cs.sm.read(req.chunk_id, req.offset, req.length) };
    }),
    DeleteChunk: serve('delete', async (req) => {
      const cs = leading(manager, req);
      await cs.group.propose(encodeDelete(req.chunk_id));
      return {};
    }),
    GetChunkInfo: serve('info', async (req) => {
      const cs = leading(manager, req);
      await cs.group.readBarrier();
      return { exists: cs.sm.exists(req.chunk_id), chunk_size: cs.sm.chunkSize };
    }),
  };
  return [svc, impl];
}
