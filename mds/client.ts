// MdsClient: how the gateway, metaservers and the CLI talk to the MDS cluster. Takes the
// MDS addresses, follows the leader (NOT_LEADER hints, dead peers skipped) and throws
// TierfsError on any non-OK status.
import * as grpc from '@grpc/grpc-js';
import { CHANNEL_OPTIONS, clientCredentials, LeaderFollower, loadProto, unary } from '../common/grpc.js';
import { check } from '../common/status.js';
import type { ProtoGrpcType as MdsProto } from '../proto/gen/mds.js';
import type { ProtoGrpcType as HeartbeatProto } from '../proto/gen/heartbeat.js';
import type { MdsServiceClient } from '../proto/gen/tierfs/mds/MdsService.js';
import type { HeartbeatServiceClient } from '../proto/gen/tierfs/heartbeat/HeartbeatService.js';
import type { CreateFsRequest } from '../proto/gen/tierfs/mds/CreateFsRequest.js';
import type { FsInfo__Output } from '../proto/gen/tierfs/mds/FsInfo.js';
import type { FsResponse__Output } from '../proto/gen/tierfs/mds/FsResponse.js';
import type { StatusOnly__Output } from '../proto/gen/tierfs/mds/StatusOnly.js';
import type { ListFsResponse__Output } from '../proto/gen/tierfs/mds/ListFsResponse.js';
import type { MountReport } from '../proto/gen/tierfs/mds/MountReport.js';
import type { MountFsResponse__Output } from '../proto/gen/tierfs/mds/MountFsResponse.js';
import type { AllocateChunkIdsResponse__Output } from '../proto/gen/tierfs/mds/AllocateChunkIdsResponse.js';
import type { ListPartitionsResponse__Output } from '../proto/gen/tierfs/mds/ListPartitionsResponse.js';
import type { PartitionLocation__Output } from '../proto/gen/tierfs/mds/PartitionLocation.js';
import type { CopysetLocationResponse__Output } from '../proto/gen/tierfs/mds/CopysetLocationResponse.js';
import type { ClusterStatusResponse__Output } from '../proto/gen/tierfs/mds/ClusterStatusResponse.js';
import type { RegisterMetaServerRequest } from '../proto/gen/tierfs/heartbeat/RegisterMetaServerRequest.js';
import type { RegisterMetaServerResponse__Output } from '../proto/gen/tierfs/heartbeat/RegisterMetaServerResponse.js';
import type { MetaServerHeartbeatRequest } from '../proto/gen/tierfs/heartbeat/MetaServerHeartbeatRequest.js';
import type { MetaServerHeartbeatResponse__Output } from '../proto/gen/tierfs/heartbeat/MetaServerHeartbeatResponse.js';
import type { CacheNodeHeartbeatRequest } from '../proto/gen/tierfs/heartbeat/CacheNodeHeartbeatRequest.js';
import type { CacheNodeHeartbeatResponse__Output } from '../proto/gen/tierfs/heartbeat/CacheNodeHeartbeatResponse.js';
import type { ListCacheNodesResponse__Output } from '../proto/gen/tierfs/mds/ListCacheNodesResponse.js';
import type { CacheNodeInfo__Output } from '../proto/gen/tierfs/mds/CacheNodeInfo.js';

import type { VolumeInfo__Output } from '../proto/gen/tierfs/mds/VolumeInfo.js';
import type { VolumeResponse__Output } from '../proto/gen/tierfs/mds/VolumeResponse.js';
import type { ListVolumesResponse__Output } from '../proto/gen/tierfs/mds/ListVolumesResponse.js';
import type { SegmentResponse__Output } from '../proto/gen/tierfs/mds/SegmentResponse.js';
import type { OpenVolumeResponse__Output } from '../proto/gen/tierfs/mds/OpenVolumeResponse.js';
import type { ChunkLocation__Output } from '../proto/gen/tierfs/mds/ChunkLocation.js';

export type { VolumeInfo__Output as VolumeInfo, ChunkLocation__Output as ChunkLocation, CacheNodeInfo__Output as CacheNodeInfo };
export type { FsInfo__Output as FsInfo, PartitionLocation__Output as PartitionLocation, ClusterStatusResponse__Output as ClusterStatus };

interface Clients {
  mds: MdsServiceClient;
  heartbeat: HeartbeatServiceClient;
}

export interface MdsClientOptions {
  /** How long a call keeps looking for a leader (failover) before giving up. */
  deadlineMs?: number;
  /** Per-RPC timeout. */
  rpcTimeoutMs?: number;
}

export interface MountPointSpec {
  host: string;
  path: string;
  pid: number;
}

export class MdsClient {
  private readonly follower: LeaderFollower<Clients>;
  private readonly rpcTimeoutMs: number;
  private readonly made: Clients[] = [];

  /** `addresses`: MDS "host:port" list (array or comma-separated). */
  constructor(addresses: string[] | string, opts: MdsClientOptions = {}) {
    const list = typeof addresses === 'string' ? addresses.split(',').map((s) => s.trim()).filter(Boolean) : addresses;
    const mdsProto = loadProto<MdsProto>('mds.proto').tierfs.mds;
    const hbProto = loadProto<HeartbeatProto>('heartbeat.proto').tierfs.heartbeat;
    this.follower = new LeaderFollower<Clients>(
      list,
      (address) => {
        const c = {
          mds: new mdsProto.MdsService(address, clientCredentials(), CHANNEL_OPTIONS),
          heartbeat: new hbProto.HeartbeatService(address, clientCredentials(), CHANNEL_OPTIONS),
        };
        this.made.push(c);
        return c;
      },
      opts.deadlineMs ?? 20_000,
    );
    this.rpcTimeoutMs = opts.rpcTimeoutMs ?? 10_000;
  }

  /** The MDS address calls currently go to. */
  get current(): string {
    return this.follower.current;
  }

  private async mds<R extends { status: { code: string; message: string; leader_hint: string } | null }>(method: string, req: object, timeoutMs = this.rpcTimeoutMs): Promise<R> {
    const res = await this.follower.call((c) => unary<object, R>(c.mds, method, req, timeoutMs));
    check(res.status, method);
    return res;
  }

  private async hb<R extends { status: { code: string; message: string; leader_hint: string } | null }>(method: string, req: object): Promise<R> {
    const res = await this.follower.call((c) => unary<object, R>(c.heartbeat, method, req, this.rpcTimeoutMs));
    check(res.status, method);
    return res;
  }

  /** Creates a filesystem; may wait for its partitions to be placed (up to about a minute). */
  async createFs(req: CreateFsRequest): Promise<FsInfo__Output> {
    return (await this.mds<FsResponse__Output>('CreateFs', req, 60_000)).fs!;
  }

  async deleteFs(name: string): Promise<void> {
    await this.mds<StatusOnly__Output>('DeleteFs', { name });
  }

  async getFsInfo(nameOrId: string | number): Promise<FsInfo__Output> {
    const req = typeof nameOrId === 'number' ? { name: '', fs_id: nameOrId } : { name: nameOrId, fs_id: 0 };
    return (await this.mds<FsResponse__Output>('GetFsInfo', req)).fs!;
  }

  async listFs(): Promise<FsInfo__Output[]> {
    return (await this.mds<ListFsResponse__Output>('ListFs', {})).filesystems;
  }

  async mountFs(name: string, mount: MountPointSpec): Promise<{ fs: FsInfo__Output; sessionId: string; ttlMs: number }> {
    const res = await this.mds<MountFsResponse__Output>('MountFs', { name, mount: { ...mount, session_id: '', last_seen_ms: 0 } });
    return { fs: res.fs!, sessionId: res.session_id, ttlMs: res.session_ttl_ms };
  }

  async umountFs(name: string, sessionId: string): Promise<void> {
    await this.mds<StatusOnly__Output>('UmountFs', { name, session_id: sessionId });
  }

  /** Keeps a mount's session alive (call well within ttlMs) and reports usage deltas. */
  async refreshSession(sessionId: string, usage: { usedBytesDelta?: number; freedBytes?: number; inodeDelta?: number } = {}, report?: MountReport): Promise<void> {
    await this.mds<StatusOnly__Output>('RefreshSession', {
      session_id: sessionId, used_bytes_delta: usage.usedBytesDelta ?? 0, freed_bytes: usage.freedBytes ?? 0, inode_delta: usage.inodeDelta ?? 0,
      ...(report ? { report } : {}),
    });
  }

  /** Reserves `count` globally unique chunk ids: [start, start + count). */
  async allocateChunkIds(fsId: number, count: number): Promise<{ start: number; count: number }> {
    const res = await this.mds<AllocateChunkIdsResponse__Output>('AllocateChunkIds', { fs_id: fsId, count });
    return { start: res.start, count: res.count };
  }

  async listPartitions(fsId: number): Promise<PartitionLocation__Output[]> {
    return (await this.mds<ListPartitionsResponse__Output>('ListPartitions', { fs_id: fsId })).partitions;
  }

  /** Creates `count` more partitions; returns all partitions of the filesystem. */
  async createPartitions(fsId: number, count: number): Promise<PartitionLocation__Output[]> {
    return (await this.mds<ListPartitionsResponse__Output>('CreatePartitions', { fs_id: fsId, count }, 60_000)).partitions;
  }

  async getCopysetLocation(poolId: number, copysetId: number): Promise<{ peers: string[]; leader: string; epoch: number }> {
    const res = await this.mds<CopysetLocationResponse__Output>('GetCopysetLocation', { pool_id: poolId, copyset_id: copysetId });
    return { peers: res.peers, leader: res.leader, epoch: res.epoch };
  }

  /** The cache group's members (ONLINE cache nodes) and its membership epoch. */
  async listCacheNodes(): Promise<ListCacheNodesResponse__Output> {
    return this.mds<ListCacheNodesResponse__Output>('ListCacheNodes', {});
  }

  /** A cache node's heartbeat (the first registers it). */
  async cacheNodeHeartbeat(req: CacheNodeHeartbeatRequest): Promise<CacheNodeHeartbeatResponse__Output> {
    const res = await this.follower.call((c) => unary<CacheNodeHeartbeatRequest, CacheNodeHeartbeatResponse__Output>(c.heartbeat, 'CacheNodeHeartbeat', req, this.rpcTimeoutMs));
    check(res.status, 'CacheNodeHeartbeat');
    return res;
  }

  async clusterStatus(): Promise<ClusterStatusResponse__Output> {
    return this.mds<ClusterStatusResponse__Output>('ClusterStatus', {});
  }

  async registerMetaServer(req: RegisterMetaServerRequest): Promise<{ metaserverId: number; token: string }> {
    const res = await this.hb<RegisterMetaServerResponse__Output>('RegisterMetaServer', req);
    return { metaserverId: res.metaserver_id, token: res.token };
  }

  async metaServerHeartbeat(req: MetaServerHeartbeatRequest): Promise<MetaServerHeartbeatResponse__Output> {
    return this.hb<MetaServerHeartbeatResponse__Output>('MetaServerHeartbeat', req);
  }

  // ---- volumes (issue 13) ----

  async createVolume(name: string, size: number, pool = ''): Promise<VolumeInfo__Output> {
    return (await this.mds<VolumeResponse__Output>('CreateVolume', { name, size, pool }, 30_000)).volume!;
  }

  async extendVolume(name: string, size: number): Promise<VolumeInfo__Output> {
    return (await this.mds<VolumeResponse__Output>('ExtendVolume', { name, size })).volume!;
  }

  async deleteVolume(name: string): Promise<VolumeInfo__Output> {
    return (await this.mds<VolumeResponse__Output>('DeleteVolume', { name })).volume!;
  }

  async recoverVolume(name: string): Promise<VolumeInfo__Output> {
    return (await this.mds<VolumeResponse__Output>('RecoverVolume', { name })).volume!;
  }

  async getVolume(name: string): Promise<VolumeInfo__Output> {
    return (await this.mds<VolumeResponse__Output>('GetVolume', { name })).volume!;
  }

  async listVolumes(): Promise<VolumeInfo__Output[]> {
    return (await this.mds<ListVolumesResponse__Output>('ListVolumes', {})).volumes;
  }

  /** The chunks of a segment; null when it was never written (and `allocate` is false). */
  async getSegment(volumeId: number, index: number, allocate: boolean): Promise<ChunkLocation__Output[] | null> {
    const res = await this.follower.call((c) => unary<object, SegmentResponse__Output>(c.mds, 'GetSegment', { volume_id: volumeId, index, allocate }, 30_000));
    if (res.status?.code === 'NOT_FOUND' && !allocate) return null;
    check(res.status, 'GetSegment');
    return res.chunks;
  }

  async openVolume(name: string, host: string, pid: number, readOnly: boolean): Promise<{ volume: VolumeInfo__Output; sessionId: string; ttlMs: number }> {
    const res = await this.mds<OpenVolumeResponse__Output>('OpenVolume', { name, host, pid, read_only: readOnly });
    return { volume: res.volume!, sessionId: res.session_id, ttlMs: res.session_ttl_ms };
  }

  async refreshVolumeSession(name: string, sessionId: string): Promise<void> {
    await this.mds<VolumeResponse__Output>('RefreshVolumeSession', { name, session_id: sessionId });
  }

  async closeVolume(name: string, sessionId: string): Promise<void> {
    await this.mds<VolumeResponse__Output>('CloseVolume', { name, session_id: sessionId });
  }

  close(): void {
    this.follower.close();
    for (const c of this.made.splice(0)) {
      c.mds.close();
      c.heartbeat.close();
    }
  }
}
