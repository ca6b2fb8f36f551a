// Fake metaservers for scheduler tests: real gRPC servers implementing CopysetService,
// registering and heartbeating through MdsClient. Copyset membership lives in a shared
// in-memory "world" (what Raft would agree on); the leader is the first live peer unless
// a transfer moved it. Configuration changes from heartbeat replies are recorded and applied.
import * as grpc from '@grpc/grpc-js';
import { loadProto, handler, startGrpcServer, type RunningServer } from '../../common/grpc.js';
import { ok } from '../../common/status.js';
import type { ProtoGrpcType } from '../../proto/gen/copyset.js';
import type { CopysetConfigChange__Output } from '../../proto/gen/tierfs/heartbeat/CopysetConfigChange.js';
import type { CreateCopysetRequest__Output } from '../../proto/gen/tierfs/copyset/CreateCopysetRequest.js';
import type { CreatePartitionRequest__Output } from '../../proto/gen/tierfs/copyset/CreatePartitionRequest.js';
import type { PartitionInfo__Output } from '../../proto/gen/tierfs/copyset/PartitionInfo.js';
import { MdsClient } from '../../mds/client.js';

export interface WorldCopyset {
  poolId: number;
  copysetId: number;
  peers: string[];
  epoch: number;
  preferredLeader: string;
  /** Bumped when leadership moves, as Raft's term would be. */
  term: number;
  partitions: PartitionInfo__Output[];
}

export class World {
  readonly copysets = new Map<string, WorldCopyset>();
  readonly servers = new Map<string, FakeMetaServer>();
  /** Servers every copyset leader reports it cannot hear from (a one-way partition). */
  readonly unreachable = new Set<string>();

  /** `last`: the last live peer leads, so a request sent to the first peer must follow a hint. */
  constructor(private readonly pick: 'first' | 'last' = 'first') {}

  private readonly lastLeader = new Map<WorldCopyset, string>();

  leaderOf(cs: WorldCopyset): string {
    const alive = (a: string) => this.servers.get(a)?.alive ?? false;
    const live = cs.peers.filter(alive);
    const leader = cs.preferredLeader && cs.peers.includes(cs.preferredLeader) && alive(cs.preferredLeader)
      ? cs.preferredLeader
      : ((this.pick === 'first' ? live[0] : live[live.length - 1]) ?? '');
    // A leader that died is replaced by an election: a new term, as in Raft.
    const last = this.lastLeader.get(cs);
    if (last && leader !== last && !alive(last)) cs.term++;
    this.lastLeader.set(cs, leader);
    return leader;
  }
}

export class FakeMetaServer {
  alive = true;
  id = 0;
  token = '';
  readonly created = new Set<string>();
  readonly createCalls: Array<{ key: string; peers: string[] }> = [];
  readonly received: CopysetConfigChange__Output[] = [];
  /** CreatePartition requests answered NOT_LEADER. */
  redirected = 0;
  private server!: RunningServer;
  private client!: MdsClient;
  private timer: NodeJS.Timeout | null = null;
  address = '';

  constructor(
    private readonly world: World,
    readonly zone: string,
    readonly host: string,
  ) {}

  async start(mdsAddresses: string[], heartbeatMs: number): Promise<void> {
    const svc = loadProto<ProtoGrpcType>('copyset.proto').tierfs.copyset.CopysetService;
    const notLeader = (leader: string) => ({ status: { code: 'NOT_LEADER', message: 'not leader', leader_hint: leader } });
    const impl: grpc.UntypedServiceImplementation = {
      CreateCopyset: handler(async (req: CreateCopysetRequest__Output) => {
        const key = `${req.pool_id}:${req.copyset_id}`;
        this.createCalls.push({ key, peers: [...req.peers] });
        this.created.add(key);
        if (!this.world.copysets.has(key)) {
          this.world.copysets.set(key, { poolId: req.pool_id, copysetId: req.copyset_id, peers: [...req.peers], epoch: 0, preferredLeader: '', term: 1, partitions: [] });
        }
        return { status: ok() };
      }),
      DeleteCopyset: handler(async () => ({ status: ok() })),
      CreatePartition: handler(async (req: CreatePartitionRequest__Output) => {
        const p = req.partition!;
        const cs = this.world.copysets.get(`${p.pool_id}:${p.copyset_id}`);
        if (!cs) return { status: { code: 'NOT_FOUND', message: 'no such copyset', leader_hint: '' } };
        const leader = this.world.leaderOf(cs);
        if (leader !== this.address) {
          this.redirected++;
          return notLeader(leader);
        }
        if (!cs.partitions.some((x) => x.partition_id === p.partition_id)) cs.partitions.push(p);
        return { status: ok() };
      }),
      DeletePartition: handler(async () => ({ status: ok() })),
    };
    this.server = await startGrpcServer('127.0.0.1:0', [[svc.service, impl]]);
    this.address = this.server.address;
    this.world.servers.set(this.address, this);
    this.client = new MdsClient(mdsAddresses, { deadlineMs: 5000 });
    const reg = await this.client.registerMetaServer({ host_name: this.host, address: this.address, zone: this.zone, pool: 'default', token: '' });
    this.id = reg.metaserverId;
    this.token = reg.token;
    this.timer = setInterval(() => void this.heartbeat().catch(() => undefined), heartbeatMs);
  }

  private async heartbeat(): Promise<void> {
    if (!this.alive) return;
    const reports = [];
    for (const key of this.created) {
      const cs = this.world.copysets.get(key)!;
      const leader = this.world.leaderOf(cs);
      const isLeader = leader === this.address && cs.peers.includes(this.address);
      // A removed server keeps reporting its stale view until told to drop the copyset.
      const view = cs.peers.includes(this.address) ? cs : { ...cs, epoch: 0 };
      reports.push({
        copyset_id: cs.copysetId, pool_id: cs.poolId, peers: view.peers, learners: [], leader, epoch: view.epoch, term: cs.term,
        is_leader: isLeader, pending_change: '',
        unreachable_peers: isLeader ? cs.peers.filter((p) => p !== this.address && this.world.unreachable.has(p)) : [],
        partitions: isLeader ? cs.partitions.map((p) => ({ partition_id: p.partition_id, fs_id: p.fs_id, start: p.start, end: p.end, next_id: p.start + 1, inode_count: 1, dentry_count: 0, read_only: false })) : [],
      });
    }
    const res = await this.client.metaServerHeartbeat({ metaserver_id: this.id, token: this.token, address: this.address, copysets: reports, disk_used_bytes: 0, disk_capacity_bytes: 1 << 30 });
    for (const change of res.changes) {
      this.received.push(change);
      this.apply(change);
    }
  }

  private apply(change: CopysetConfigChange__Output): void {
    const key = `${change.pool_id}:${change.copyset_id}`;
    const cs = this.world.copysets.get(key);
    if (!cs) return;
    if (change.type === 'REMOVE_COPYSET') {
      this.created.delete(key);
      return;
    }
    if (Number(change.epoch) !== cs.epoch) return; // stale
    if (change.type === 'CHANGE_PEER') {
      // Like the real metaserver: the leader creates the copyset on the newcomer, then changes peers.
      this.world.servers.get(change.peer)?.created.add(key);
      cs.peers = [...cs.peers.filter((p) => p !== change.old_peer), change.peer];
      cs.epoch++;
    } else if (change.type === 'TRANSFER_LEADER') {
      if (cs.preferredLeader !== change.peer) cs.term++;
      cs.preferredLeader = change.peer;
    }
  }

  async stop(): Promise<void> {
    this.alive = false;
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = null;
    this.client.close();
    await this.server.close();
  }
}
