// Registration with the MDS and the heartbeat loop: each copyset's members, leader, epoch
// and partitions, plus this server's usage. The MDS answers with configuration changes,
// which are executed here (one at a time per copyset).
import * as grpc from '@grpc/grpc-js';
import { readFile, statfs, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { CHANNEL_OPTIONS, clientCredentials, LeaderFollower, loadProto, unary } from '../common/grpc.js';
import type { Logger } from '../common/log.js';
import { check, StatusCode, TierfsError } from '../common/status.js';
import type { ProtoGrpcType } from '../proto/gen/heartbeat.js';
import type { RegisterMetaServerResponse__Output } from '../proto/gen/tierfs/heartbeat/RegisterMetaServerResponse.js';
import type { MetaServerHeartbeatResponse__Output } from '../proto/gen/tierfs/heartbeat/MetaServerHeartbeatResponse.js';
import type { CopysetConfigChange__Output } from '../proto/gen/tierfs/heartbeat/CopysetConfigChange.js';
import type { CopysetReport } from '../proto/gen/tierfs/heartbeat/CopysetReport.js';
import { CopysetNode } from './copyset-node.js';
import { type CopysetHolder, type HeldCopyset, addPeer, changePeer, removePeer, transferLeader } from './copyset-admin.js';

export interface HeartbeatOptions {
  mds: string[];
  dataDir: string;
  address: string;
  hostName: string;
  zone: string;
  pool: string;
  intervalMs: number;
  manager: CopysetHolder;
  logger: Logger;
  /** "chunkserver" registers a chunkserver (its copysets hold chunks); default metaserver. */
  kind?: 'metaserver' | 'chunkserver';
}

interface Registration {
  metaserverId: number;
  token: string;
}

export function copysetReport(node: HeldCopyset): CopysetReport {
  const st = node.group.status();
  return {
    copyset_id: node.copysetId, pool_id: node.poolId, peers: st.voters, learners: st.learners, leader: st.leader ?? '',
    epoch: st.epoch, term: st.term, is_leader: node.group.isLeader(), pending_change: '', unreachable_peers: st.unreachable ?? [],
    partitions: !(node instanceof CopysetNode) ? [] : [...node.sm.partitions.values()].map((p) => ({
      partition_id: p.partitionId, fs_id: p.fsId, start: p.start, end: p.end, next_id: p.nextId,
      inode_count: p.inodeCount, dentry_count: p.dentryCount, read_only: p.readOnly,
    })),
  };
}

export class MdsHeartbeat {
  private readonly mds: LeaderFollower<grpc.Client>;
  private registration: Registration | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly started = Date.now();
  /** Changes being executed, per copyset, reported as pending_change. */
  private readonly executing = new Map<string, string>();
  private beating = false;

  constructor(private readonly opts: HeartbeatOptions) {
    const Ctor = loadProto<ProtoGrpcType>('heartbeat.proto').tierfs.heartbeat.HeartbeatService;
    this.mds = new LeaderFollower(opts.mds, (a) => new Ctor(a, clientCredentials(), CHANNEL_OPTIONS), 20_000);
  }

  private get tokenFile(): string {
    return join(this.opts.dataDir, 'registration.json');
  }

  get metaserverId(): number {
    return this.registration?.metaserverId ?? 0;
  }

  /** Registers (presenting the kept token after a restart) and keeps the answer on disk. */
  async register(): Promise<Registration> {
    const kept = await readFile(this.tokenFile, 'utf8').then((s) => JSON.parse(s) as Registration, () => null);
    const o = this.opts;
    const res = await this.mds.call((c) =>
      unary<object, RegisterMetaServerResponse__Output>(c, 'RegisterMetaServer', {
        host_name: o.hostName, address: o.address, zone: o.zone, pool: o.pool, token: kept?.token ?? '', kind: o.kind === 'chunkserver' ? 'chunkserver' : '',
      }),
    );
    check(res.status, 'RegisterMetaServer');
    this.registration = { metaserverId: res.metaserver_id, token: res.token };
    const tmp = `${this.tokenFile}.tmp`;
    await writeFile(tmp, JSON.stringify(this.registration));
    await rename(tmp, this.tokenFile);
    o.logger.info({ metaserverId: res.metaserver_id }, 'registered with the MDS');
    return this.registration;
  }

  start(): void {
    this.timer = setInterval(() => void this.beat(), this.opts.intervalMs);
    this.timer.unref();
    void this.beat();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.mds.close();
  }

  async beat(): Promise<void> {
    if (this.beating) return;
    this.beating = true;
    try {
      if (!this.registration) await this.register();
      const reg = this.registration!;
      const fs = await statfs(this.opts.dataDir);
      const copysets = this.opts.manager.list().map((n) => {
        const r = copysetReport(n);
        r.pending_change = this.executing.get(n.name) ?? '';
        return r;
      });
      const res = await this.mds.call((c) =>
        unary<object, MetaServerHeartbeatResponse__Output>(c, 'MetaServerHeartbeat', {
          metaserver_id: reg.metaserverId, token: reg.token, address: this.opts.address, copysets,
          disk_used_bytes: (fs.blocks - fs.bfree) * fs.bsize, disk_capacity_bytes: fs.blocks * fs.bsize,
          memory_bytes: process.memoryUsage().rss, uptime_s: Math.floor((Date.now() - this.started) / 1000),
        }),
      );
      if (res.status?.code === StatusCode.NOT_FOUND || res.status?.code === StatusCode.PERMISSION_DENIED) {
        this.registration = null; // the MDS forgot us or the token: register again next time
      }
      check(res.status, 'MetaServerHeartbeat');
      for (const change of res.changes) this.execute(change);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      // A refused registration needs a person (e.g. a data dir from another cluster); say so loudly.
      const refused = err instanceof TierfsError && (err.code === StatusCode.PERMISSION_DENIED || err.code === StatusCode.EXISTS);
      if (refused) this.opts.logger.error({ err: message }, 'the MDS refuses this metaserver');
      else this.opts.logger.warn({ err: message }, 'heartbeat failed');
    } finally {
      this.beating = false;
    }
  }

  private execute(change: CopysetConfigChange__Output): void {
    const { manager, logger } = this.opts;
    const key = `${change.pool_id}.${change.copyset_id}`;
    if (this.executing.has(key) || change.type === 'NONE') return;
    if (change.type !== 'REMOVE_COPYSET') {
      if (!manager.has(change.pool_id, change.copyset_id)) return;
      const epoch = manager.get(change.pool_id, change.copyset_id).group.status().epoch;
      if (change.epoch < epoch) {
        logger.info({ change, epoch }, 'ignoring a configuration change based on an old epoch');
        return;
      }
    }
    const what = `${change.type} ${change.peer}${change.old_peer ? ` (old ${change.old_peer})` : ''}`;
    this.executing.set(key, what);
    const run = async () => {
      switch (change.type) {
        case 'ADD_PEER': return addPeer(manager, change.pool_id, change.copyset_id, change.peer);
        case 'REMOVE_PEER': return removePeer(manager, change.pool_id, change.copyset_id, change.peer);
        case 'CHANGE_PEER': return changePeer(manager, change.pool_id, change.copyset_id, change.peer, change.old_peer);
        case 'TRANSFER_LEADER': return transferLeader(manager, change.pool_id, change.copyset_id, change.peer);
        case 'REMOVE_COPYSET': return manager.removeIfNotMember(change.pool_id, change.copyset_id);
        default: throw new TierfsError(StatusCode.NOT_SUPPORTED, `unknown change ${String(change.type)}`);
      }
    };
    run().then(
      (done) => logger.info({ copyset: key, change: what }, done === false ? 'configuration change not applicable' : 'configuration change done'),
      (err: unknown) => logger.warn({ copyset: key, change: what, err: err instanceof Error ? err.message : String(err) }, 'configuration change failed'),
    ).finally(() => this.executing.delete(key));
  }
}
