// The volume RPCs of MdsService (issue 13), on the leader's VolumeManager.
import type * as grpc from '@grpc/grpc-js';
import { StatusCode, TierfsError } from '../common/status.js';
import type { CreateVolumeRequest__Output } from '../proto/gen/tierfs/mds/CreateVolumeRequest.js';
import type { ExtendVolumeRequest__Output } from '../proto/gen/tierfs/mds/ExtendVolumeRequest.js';
import type { VolumeNameRequest__Output } from '../proto/gen/tierfs/mds/VolumeNameRequest.js';
import type { GetSegmentRequest__Output } from '../proto/gen/tierfs/mds/GetSegmentRequest.js';
import type { OpenVolumeRequest__Output } from '../proto/gen/tierfs/mds/OpenVolumeRequest.js';
import type { VolumeSessionRequest__Output } from '../proto/gen/tierfs/mds/VolumeSessionRequest.js';
import type { MdsConfig } from './config.js';
import type { LeaderContext } from './leader.js';

type Gated = <Req, Res extends object>(method: string, fn: (ctx: LeaderContext, req: Req) => Promise<Res>) => grpc.handleUnaryCall<Req, unknown>;

export function volumeRpcs(gated: Gated, config: MdsConfig): grpc.UntypedServiceImplementation {
  const info = (ctx: LeaderContext, vol: Parameters<LeaderContext['volumes']['toInfo']>[0]) => ({ volume: ctx.volumes.toInfo(vol) });
  return {
    CreateVolume: gated('CreateVolume', async (ctx, req: CreateVolumeRequest__Output) => info(ctx, await ctx.volumes.create(req.name, Number(req.size), req.pool))),
    ExtendVolume: gated('ExtendVolume', async (ctx, req: ExtendVolumeRequest__Output) => info(ctx, await ctx.volumes.extend(req.name, Number(req.size)))),
    DeleteVolume: gated('DeleteVolume', async (ctx, req: VolumeNameRequest__Output) => info(ctx, await ctx.volumes.delete(req.name))),
    RecoverVolume: gated('RecoverVolume', async (ctx, req: VolumeNameRequest__Output) => info(ctx, await ctx.volumes.recover(req.name))),
    GetVolume: gated('GetVolume', async (ctx, req: VolumeNameRequest__Output) => info(ctx, ctx.volumes.find(req.name))),
    ListVolumes: gated('ListVolumes', async (ctx) => ({
      volumes: [...ctx.volumes.volumes.values()].sort((a, b) => a.id - b.id).map((v) => ctx.volumes.toInfo(v)),
    })),
    GetSegment: gated('GetSegment', async (ctx, req: GetSegmentRequest__Output) => {
      const seg = await ctx.volumes.getSegment(req.volume_id, req.index, req.allocate);
      if (!seg) throw new TierfsError(StatusCode.NOT_FOUND, `segment ${req.index} of volume ${req.volume_id} was never written`);
      return { chunks: seg.chunks.map((c) => ({ chunk_id: c.chunkId, pool_id: c.poolId, copyset_id: c.copysetId })) };
    }),
    OpenVolume: gated('OpenVolume', async (ctx, req: OpenVolumeRequest__Output) => {
      const { vol, sessionId } = await ctx.volumes.open(req.name, req.host, req.pid, req.read_only);
      return { volume: ctx.volumes.toInfo(vol), session_id: sessionId, session_ttl_ms: config.sessions.ttlMs };
    }),
    RefreshVolumeSession: gated('RefreshVolumeSession', async (ctx, req: VolumeSessionRequest__Output) => info(ctx, await ctx.volumes.refresh(req.name, req.session_id))),
    CloseVolume: gated('CloseVolume', async (ctx, req: VolumeSessionRequest__Output) => info(ctx, await ctx.volumes.close(req.name, req.session_id))),
  };
}
