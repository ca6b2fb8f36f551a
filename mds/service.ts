// The gRPC face of the MDS: MdsService and HeartbeatService. Only the leader serves;
// a standby answers every RPC with NOT_LEADER and the leader's address as the hint.
import type { FsInfo } from '../proto/gen/tierfs/mds/FsInfo.js';
import type * as grpc from '@grpc/grpc-js';
import { Counter, type Registry } from 'prom-client';
import { handler, loadProto } from '../common/grpc.js';
import { ok, statusOf, StatusCode, TierfsError, type Status } from '../common/status.js';
import type { Logger } from '../common/log.js';
import type { ProtoGrpcType as MdsProto } from '../proto/gen/mds.js';
import type { ProtoGrpcType as HeartbeatProto } from '../proto/gen/heartbeat.js';
import type { CreateFsRequest__Output } from '../proto/gen/tierfs/mds/CreateFsRequest.js';
import type { FsNameRequest__Output } from '../proto/gen/tierfs/mds/FsNameRequest.js';
import type { GetFsInfoRequest__Output } from '../proto/gen/tierfs/mds/GetFsInfoRequest.js';
import type { MountFsRequest__Output } from '../proto/gen/tierfs/mds/MountFsRequest.js';
import type { UmountFsRequest__Output } from '../proto/gen/tierfs/mds/UmountFsRequest.js';
import type { RefreshSessionRequest__Output } from '../proto/gen/tierfs/mds/RefreshSessionRequest.js';
import type { AllocateChunkIdsRequest__Output } from '../proto/gen/tierfs/mds/AllocateChunkIdsRequest.js';
import type { ListPartitionsRequest__Output } from '../proto/gen/tierfs/mds/ListPartitionsRequest.js';
import type { CreatePartitionsRequest__Output } from '../proto/gen/tierfs/mds/CreatePartitionsRequest.js';
import type { CopysetLocationRequest__Output } from '../proto/gen/tierfs/mds/CopysetLocationRequest.js';
import type { PartitionLocation } from '../proto/gen/tierfs/mds/PartitionLocation.js';
import type { RegisterMetaServerRequest__Output } from '../proto/gen/tierfs/heartbeat/RegisterMetaServerRequest.js';
import type { MetaServerHeartbeatRequest__Output } from '../proto/gen/tierfs/heartbeat/MetaServerHeartbeatRequest.js';
import type { MdsConfig } from './config.js';
import type { LeaderContext } from './leader.js';
import type { MdsMemberInfo } from './election.js';
import type { PartitionRecord } from './records.js';
import { copysetKey } from './state.js';
import { volumeRpcs } from './volume-service.js';
import { CacheGroupRegistry } from './cache-group.js';
import type { CacheNodeHeartbeatRequest__Output } from '../proto/gen/tierfs/heartbeat/CacheNodeHeartbeatRequest.js';

export interface MdsNodeView {
  readonly config: MdsConfig;
  /** The leader context when this MDS leads, else null. */
  leader(): LeaderContext | null;
  leaderAddress(): string;
  members(): Promise<MdsMemberInfo[]>;
}

type Service = [grpc.ServiceDefinition, grpc.UntypedServiceImplementation];

/**
 * Least privilege: only GetFsInfo and MountFs (what a mount, fsck and the metaservers'
 * deleter call) carry the S3 secret; the creator already has it, listings need none.
 */
function withoutSecret(info: FsInfo): FsInfo {
  return { ...info, s3: info.s3 ? { ...info.s3, secret_key: '' } : null };
}

export function mdsServices(node: MdsNodeView, registry: Registry, log: Logger): Service[] {
  // One cache group registry per leadership term (a LeaderContext), so a new leader knows
  // its membership is being rebuilt and says so, and keeps nothing stale from an earlier term.
  const cacheGroups = new WeakMap<LeaderContext, CacheGroupRegistry>();
  const cacheGroup = (ctx: LeaderContext): CacheGroupRegistry => {
    let g = cacheGroups.get(ctx);
    if (!g) cacheGroups.set(ctx, (g = new CacheGroupRegistry()));
    return g;
  };
  const rpcs = new Counter({ name: 'tierfs_mds_rpc_total', help: 'MDS RPCs by method and status', labelNames: ['method', 'code'], registers: [registry] });

  /** Wraps a leader-only RPC: NOT_LEADER on standbys, errors become statuses. */
  function gated<Req, Res extends object>(method: string, fn: (ctx: LeaderContext, req: Req) => Promise<Res>) {
    return handler<Req, Res & { status: Status }>(async (req) => {
      const ctx = node.leader();
      let status: Status;
      let res: Res | null = null;
      if (!ctx) {
        status = { code: StatusCode.NOT_LEADER, message: 'this MDS is a standby', leader_hint: node.leaderAddress() };
      } else {
        try {
          res = await fn(ctx, req);
          status = ok();
        } catch (err) {
          status = statusOf(err);
          if (status.code === StatusCode.NOT_LEADER && !status.leader_hint) status.leader_hint = node.leaderAddress();
          if (status.code === StatusCode.INTERNAL) log.error({ method, err: (err as Error).stack }, 'rpc failed');
        }
      }
      rpcs.inc({ method, code: status.code });
      return { ...(res ?? ({} as Res)), status };
    });
  }

  const location = (ctx: LeaderContext, pt: PartitionRecord): PartitionLocation => {
    const key = copysetKey(pt.poolId, pt.copysetId);
    const rt = ctx.state.partitionRuntime.get(pt.partitionId);
    return {
      partition: { fs_id: pt.fsId, pool_id: pt.poolId, copyset_id: pt.copysetId, partition_id: pt.partitionId, start: pt.start, end: pt.end },
      peers: ctx.state.copysets.get(key)?.peers ?? [],
      leader: ctx.state.copysetRuntime.get(key)?.leader ?? '',
      read_only: rt?.readOnly ?? false,
      next_id: rt?.nextId ?? pt.start,
    };
  };

  const mds = loadProto<MdsProto>('mds.proto').tierfs.mds.MdsService;
  const mdsImpl: grpc.UntypedServiceImplementation = {
    CreateFs: gated('CreateFs', async (ctx, req: CreateFsRequest__Output) => ({ fs: withoutSecret(ctx.filesystems.toInfo(await ctx.filesystems.create(req))) })),
    DeleteFs: gated('DeleteFs', async (ctx, req: FsNameRequest__Output) => {
      await ctx.filesystems.delete(req.name);
      return {};
    }),
    GetFsInfo: gated('GetFsInfo', async (ctx, req: GetFsInfoRequest__Output) => ({ fs: ctx.filesystems.toInfo(ctx.filesystems.get(req.name || req.fs_id)) })),
    ListFs: gated('ListFs', async (ctx) => ({
      filesystems: [...ctx.state.filesystems.values()].sort((a, b) => a.fsId - b.fsId).map((fs) => withoutSecret(ctx.filesystems.toInfo(fs))),
    })),
    MountFs: gated('MountFs', async (ctx, req: MountFsRequest__Output) => {
      const m = req.mount ?? { host: '', path: '', pid: 0 };
      const { fs, sessionId } = await ctx.filesystems.mount(req.name, { host: m.host, path: m.path, pid: m.pid });
      return { fs: ctx.filesystems.toInfo(fs), session_id: sessionId, session_ttl_ms: node.config.sessions.ttlMs };
    }),
    UmountFs: gated('UmountFs', async (ctx, req: UmountFsRequest__Output) => {
      await ctx.filesystems.umount(req.name, req.session_id);
      return {};
    }),
    RefreshSession: gated('RefreshSession', async (ctx, req: RefreshSessionRequest__Output) => {
      await ctx.filesystems.refresh(req.session_id, Number(req.used_bytes_delta), Number(req.freed_bytes), Number(req.inode_delta), req.report);
      return {};
    }),
    AllocateChunkIds: gated('AllocateChunkIds', async (ctx, req: AllocateChunkIdsRequest__Output) => {
      ctx.filesystems.get(req.fs_id);
      const count = req.count || 1;
      if (count > node.config.ids.maxChunkIdsPerCall) {
        throw new TierfsError(StatusCode.INVALID_ARGUMENT, `asked for ${count} chunk ids; at most ${node.config.ids.maxChunkIdsPerCall} per call`);
      }
      return { start: await ctx.chunkIds.allocate(count), count };
    }),
    ListPartitions: gated('ListPartitions', async (ctx, req: ListPartitionsRequest__Output) => {
      ctx.filesystems.get(req.fs_id);
      return { partitions: ctx.state.partitionsOf(req.fs_id).filter((p) => p.created).map((p) => location(ctx, p)) };
    }),
    CreatePartitions: gated('CreatePartitions', async (ctx, req: CreatePartitionsRequest__Output) => {
      ctx.filesystems.get(req.fs_id);
      const count = req.count || 1;
      if (count > 64) throw new TierfsError(StatusCode.INVALID_ARGUMENT, `asked for ${count} partitions; at most 64 per call`);
      await ctx.topology.createPartitions(req.fs_id, count);
      return { partitions: ctx.state.partitionsOf(req.fs_id).filter((p) => p.created).map((p) => location(ctx, p)) };
    }),
    GetCopysetLocation: gated('GetCopysetLocation', async (ctx, req: CopysetLocationRequest__Output) => {
      const key = copysetKey(req.pool_id, req.copyset_id);
      const cs = ctx.state.copysets.get(key);
      if (!cs) throw new TierfsError(StatusCode.NOT_FOUND, `copyset ${req.pool_id}/${req.copyset_id} does not exist`);
      return { peers: cs.peers, leader: ctx.state.copysetRuntime.get(key)?.leader ?? '', epoch: cs.epoch };
    }),
    ClusterStatus: gated('ClusterStatus', async (ctx) => ({ ...(await clusterStatusWithQuotas(ctx, await node.members())), cache_nodes: cacheGroup(ctx).all() })),
    ListCacheNodes: gated('ListCacheNodes', async (ctx) => cacheGroup(ctx).members()),
    ...volumeRpcs(gated, node.config),
  };

  const hb = loadProto<HeartbeatProto>('heartbeat.proto').tierfs.heartbeat.HeartbeatService;
  const hbImpl: grpc.UntypedServiceImplementation = {
    RegisterMetaServer: gated('RegisterMetaServer', async (ctx, req: RegisterMetaServerRequest__Output) => {
      const ms = await ctx.topology.register(req);
      return { metaserver_id: ms.id, token: ms.token };
    }),
    MetaServerHeartbeat: gated('MetaServerHeartbeat', async (ctx, req: MetaServerHeartbeatRequest__Output) => {
      const { ms, changes } = await ctx.topology.heartbeat(req);
      return { changes: [...changes, ...ctx.scheduler.changesFor(ms.address)] };
    }),
    CacheNodeHeartbeat: gated('CacheNodeHeartbeat', async (ctx, req: CacheNodeHeartbeatRequest__Output) => {
      const { nodeId, intervalMs } = cacheGroup(ctx).heartbeat(req);
      return { node_id: nodeId, interval_ms: intervalMs };
    }),
  };
  return [
    [mds.service, mdsImpl],
    [hb.service, hbImpl],
  ];
}

/** clusterStatus with each filesystem's quotas, asked of the metaservers (in parallel, cached a second). */
export async function clusterStatusWithQuotas(ctx: LeaderContext, members: MdsMemberInfo[]) {
  const status = clusterStatus(ctx, members);
  const filesystems = await Promise.all(
    status.filesystems.map(async (fs) => {
      const { quotas, error } = await ctx.quotas.of(Number(fs.fs_id));
      return { ...fs, quotas, quotas_error: error };
    }),
  );
  return { ...status, filesystems };
}

export function clusterStatus(ctx: LeaderContext, members: MdsMemberInfo[]) {
  const s = ctx.state;
  const metaservers = [...s.metaservers.values()].map((m) => {
    const rt = s.metaserverRuntime.get(m.id);
    let leaders = 0;
    for (const r of s.copysetRuntime.values()) if (r.leader === m.address) leaders++;
    return {
      id: m.id, address: m.address, host_name: m.hostName, zone: m.zone, state: rt?.state ?? 'OFFLINE',
      last_heartbeat_ms: rt?.lastHeartbeatMs ?? 0, copyset_count: s.copysetsOn(m.address).length, leader_count: leaders,
      disk_used_bytes: rt?.diskUsedBytes ?? 0, disk_capacity_bytes: rt?.diskCapacityBytes ?? 0, kind: m.kind ?? 'metaserver',
    };
  });
  const copysets = [...s.copysets.values()].map((c) => {
    const online = c.peers.filter((p) => s.stateOf(p) !== 'OFFLINE').length;
    const health = online === c.peers.length ? 'HEALTHY' : online * 2 > c.peers.length ? 'DEGRADED' : 'UNAVAILABLE';
    return {
      pool_id: c.poolId, copyset_id: c.copysetId, peers: c.peers, leader: s.copysetRuntime.get(copysetKey(c.poolId, c.copysetId))?.leader ?? '',
      epoch: c.epoch, health, partition_count: s.partitionsOnCopyset(c.poolId, c.copysetId),
      pool: [...s.pools.entries()].find(([, id]) => id === c.poolId)?.[0] ?? '',
    };
  });
  return {
    mds: members.map((m) => ({ address: m.address, leader: m.leader, pid: m.pid })),
    metaservers,
    copysets,
    // Status is for people and tools: no secrets (GetFsInfo carries them for mounts).
    filesystems: [...s.filesystems.values()].map((fs) => withoutSecret(ctx.filesystems.toInfo(fs))),
    operators: ctx.scheduler.describeAll(),
    volumes: [...ctx.volumes.volumes.values()].map((v) => ctx.volumes.toInfo(v)),
  };
}
