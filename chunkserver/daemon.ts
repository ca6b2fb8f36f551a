// The chunkserver daemon: the chunk-file pool, one raft host for every chunk copyset, one
// gRPC server (chunk, copyset admin, raft, health), metrics, and with an MDS configured
// registration plus heartbeats (the metaserver's heartbeat loop, kind "chunkserver").
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Counter, Gauge } from 'prom-client';
import { startGrpcServer } from '../common/grpc.js';
import { healthService } from '../common/health.js';
import type { Logger } from '../common/log.js';
import { createRegistry, startMetricsServer } from '../common/metrics.js';
import { membersOn } from '../metaserver/copyset-admin.js';
import { copysetService } from '../metaserver/copyset-service.js';
import { MdsHeartbeat } from '../metaserver/heartbeat.js';
import { RaftHost } from '../raft/index.js';
import { ChunkFilePool } from './chunk-pool.js';
import type { ChunkServerConfig } from './config.js';
import { ChunkCopysetManager } from './copysets.js';
import { chunkService } from './service.js';

export interface RunningChunkServer {
  address: string;
  metricsPort: number;
  manager: ChunkCopysetManager;
  pool: ChunkFilePool;
  close(): Promise<void>;
}

export async function startChunkServer(cfg: ChunkServerConfig, logger: Logger): Promise<RunningChunkServer> {
  await mkdir(cfg.dataDir, { recursive: true });
  const pool = new ChunkFilePool(join(cfg.dataDir, 'chunkfilepool'), { chunkSize: cfg.chunkSize, target: cfg.chunkPool.target, logger }).open();
  const host = await RaftHost.open({ dataDir: join(cfg.dataDir, 'raft'), selfAddress: cfg.listen, logger, ...cfg.raft });
  const manager = new ChunkCopysetManager({ host, pool, dir: join(cfg.dataDir, 'copysets'), selfAddress: cfg.listen, logger, membersOn });
  await manager.loadAll();

  const registry = createRegistry('chunkserver');
  const ops = new Counter({ name: 'tierfs_chunkserver_ops_total', help: 'chunk requests by op and status', labelNames: ['op', 'code'] as const, registers: [registry] });
  new Gauge({ name: 'tierfs_chunkserver_pool_level', help: 'zero-filled chunk files ready in the pool', registers: [registry], collect() { this.set(pool.level()); } });
  new Gauge({ name: 'tierfs_chunkserver_copysets', help: 'chunk copysets on this chunkserver', registers: [registry], collect() { this.set(manager.list().length); } });
  new Gauge({ name: 'tierfs_chunkserver_leaders', help: 'chunk copysets this chunkserver leads', registers: [registry], collect() { this.set(manager.list().filter((c) => c.group.isLeader()).length); } });
  new Gauge({ name: 'tierfs_chunkserver_chunks', help: 'chunk files in the copysets here', registers: [registry], collect() { this.set(manager.list().reduce((n, c) => n + c.sm.chunkIds().length, 0)); } });

  const grpcServer = await startGrpcServer(cfg.listen, [chunkService(manager, ops), copysetService(manager), host.grpcService(), healthService('chunkserver')]);
  const metrics = await startMetricsServer(registry, cfg.metrics.host, cfg.metrics.port);

  const membership = setInterval(() => void manager.dropRemovedCopysets().catch((err: unknown) => logger.warn({ err: String(err) }, 'membership check failed')), 2000);
  membership.unref();
  let heartbeat: MdsHeartbeat | null = null;
  if (cfg.mds.length > 0) {
    heartbeat = new MdsHeartbeat({
      mds: cfg.mds, dataDir: cfg.dataDir, address: cfg.listen, hostName: cfg.hostName, zone: cfg.zone, pool: cfg.pool,
      intervalMs: cfg.heartbeatIntervalMs, manager, logger, kind: 'chunkserver',
    });
    heartbeat.start();
  }
  logger.info({ address: grpcServer.address, copysets: manager.list().length, pool: pool.level() }, 'chunkserver serving');
  return {
    address: grpcServer.address,
    metricsPort: metrics.port,
    manager,
    pool,
    close: async () => {
      clearInterval(membership);
      heartbeat?.stop();
      await grpcServer.close();
      await metrics.close();
      await host.close();
      await manager.close();
      await pool.close();
    },
  };
}
