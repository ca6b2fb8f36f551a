// The metaserver daemon: one level database and one raft host for every copyset here,
// one gRPC server for the metaserver, copyset-admin, raft and health services, a metrics
// endpoint, and (with an MDS configured) registration plus heartbeats.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Level } from 'level';
import { Gauge } from 'prom-client';
import { startGrpcServer } from '../common/grpc.js';
import { healthService } from '../common/health.js';
import type { Logger } from '../common/log.js';
import { createRegistry, startMetricsServer } from '../common/metrics.js';
import type { MetaServerConfig } from './config.js';
import { CopysetNodeManager } from './copyset-manager.js';
import type { ObjectDeleter } from './copyset-node.js';
import { metaDumpService } from './dump-service.js';
import { copysetService } from './copyset-service.js';
import { membersOn } from './copyset-admin.js';
import { metaServerService } from './service.js';
import { MdsHeartbeat } from './heartbeat.js';
import { renameResolver } from './rename-resolver.js';
import type { ReplicationHost } from './raft-types.js';
import { S3ObjectDeleter } from './s3-deleter.js';

export interface RaftHostFactoryOptions {
  dataDir: string;
  selfAddress: string;
  logger: Logger;
  tickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
  snapshotThreshold: number;
}

export interface MetaServerDeps {
  logger: Logger;
  openRaftHost(opts: RaftHostFactoryOptions): Promise<ReplicationHost>;
  /** Overrides the S3 deleter built from the MDS's FsInfo (e.g. s3adaptor's). */
  deleter?: ObjectDeleter;
}

export interface RunningMetaServer {
  address: string;
  metricsPort: number;
  manager: CopysetNodeManager;
  close(): Promise<void>;
}

export async function startMetaServer(cfg: MetaServerConfig, deps: MetaServerDeps): Promise<RunningMetaServer> {
  const { logger } = deps;
  await mkdir(cfg.dataDir, { recursive: true });
  const db = new Level<string, string>(join(cfg.dataDir, 'meta-db'));
  await db.open();
  const host = await deps.openRaftHost({ dataDir: join(cfg.dataDir, 'raft'), selfAddress: cfg.listen, logger, ...cfg.raft });
  const s3Deleter = !deps.deleter && cfg.deleteObjects && cfg.mds.length > 0 ? new S3ObjectDeleter(cfg.mds) : null;
  const resolver = renameResolver(logger);
  const manager = new CopysetNodeManager({
    host, db, selfAddress: cfg.listen, logger, membersOn,
    node: {
      deleter: deps.deleter ?? s3Deleter ?? undefined, resolver: resolver.resolve,
      backgroundIntervalMs: cfg.backgroundIntervalMs, txResolveAfterMs: cfg.txResolveAfterMs, txRetentionMs: cfg.txRetentionMs,
    },
  });
  await manager.loadAll();
  const registry = createRegistry('metaserver');
  const grpcServer = await startGrpcServer(cfg.listen, [
    metaServerService(manager, registry), copysetService(manager), metaDumpService(manager), host.grpcService(), healthService('metaserver'),
  ]);

  new Gauge({ name: 'tierfs_metaserver_copysets', help: 'copysets on this metaserver', registers: [registry], collect() { this.set(manager.list().length); } });
  new Gauge({ name: 'tierfs_metaserver_leaders', help: 'copysets this metaserver leads', registers: [registry], collect() { this.set(manager.list().filter((n) => n.group.isLeader()).length); } });
  new Gauge({
    name: 'tierfs_metaserver_inodes', help: 'inodes in the partitions on this metaserver', registers: [registry],
    collect() { this.set(manager.list().reduce((n, c) => n + [...c.sm.partitions.values()].reduce((m, p) => m + p.inodeCount, 0), 0)); },
  });
  new Gauge({
    name: 'tierfs_metaserver_raft_log_lag_entries', help: 'per copyset this server leads: entries of the leader\'s log a member is known not to hold (last index - match index)',
    labelNames: ['copyset', 'peer'], registers: [registry],
    collect() {
      this.reset(); // copysets and peers come and go: only those led now
      for (const node of manager.list()) {
        if (!node.group.isLeader()) continue;
        const st = node.group.status();
        for (const [peer, match] of Object.entries(st.matchIndex ?? {})) this.set({ copyset: node.name, peer }, Math.max(0, (st.lastIndex ?? 0) - match));
      }
    },
  });
  const metrics = await startMetricsServer(registry, cfg.metrics.host, cfg.metrics.port);

  const membership = setInterval(() => void manager.dropRemovedCopysets().catch((err: unknown) => logger.warn({ err }, 'membership check failed')), 2000);
  membership.unref();

  let heartbeat: MdsHeartbeat | null = null;
  if (cfg.mds.length > 0) {
    heartbeat = new MdsHeartbeat({
      mds: cfg.mds, dataDir: cfg.dataDir, address: cfg.listen, hostName: cfg.hostName, zone: cfg.zone, pool: cfg.pool,
      intervalMs: cfg.heartbeatIntervalMs, manager, logger,
    });
    heartbeat.start();
  }
  logger.info({ address: grpcServer.address, copysets: manager.list().length }, 'metaserver serving');

  return {
    address: grpcServer.address,
    metricsPort: metrics.port,
    manager,
    close: async () => {
      clearInterval(membership);
      heartbeat?.stop();
      manager.close();
      resolver.rpc.close();
      s3Deleter?.close();
      await grpcServer.close();
      await metrics.close();
      await host.close();
      await db.close();
    },
  };
}
