// The MDS daemon: store, leadership, one gRPC server (MdsService, HeartbeatService,
// Health) and metrics. With etcd endpoints the MDS campaigns; otherwise it is the sole
// leader over an embedded store in its data dir.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { Gauge, type Registry } from 'prom-client';
import { startGrpcServer, type RunningServer } from '../common/grpc.js';
import { healthService } from '../common/health.js';
import { createRegistry, startMetricsServer, type MetricsServer } from '../common/metrics.js';
import { statusRoutes } from './status-page.js';
import { silentLogger, type Logger } from '../common/log.js';
import type { MdsConfig } from './config.js';
import { EtcdKv, LevelKv, type KvStore } from './kv.js';
import { EtcdLeadership, SoleLeadership, type Leadership, type MdsMemberInfo } from './election.js';
import { LeaderContext } from './leader.js';
import { mdsServices, type MdsNodeView } from './service.js';

export class MdsNode implements MdsNodeView {
  private ctx: LeaderContext | null = null;
  private kv!: KvStore;
  private etcd: Etcd3 | null = null;
  private leadership!: Leadership;
  private grpc!: RunningServer;
  private metrics!: MetricsServer;
  /** Bumped on every change of leadership, so a slow start from an old term is discarded. */
  private generation = 0;

  private constructor(
    readonly config: MdsConfig,
    private readonly log: Logger,
  ) {}

  static async start(config: MdsConfig, log: Logger = silentLogger): Promise<MdsNode> {
    const node = new MdsNode(config, log);
    await node.init();
    return node;
  }

  get address(): string {
    return this.config.advertise ?? this.grpc.address;
  }

  get metricsPort(): number {
    return this.metrics.port;
  }

  private async init(): Promise<void> {
    const registry = createRegistry('mds');
    const leaderGauge = new Gauge({ name: 'tierfs_mds_is_leader', help: '1 when this MDS leads', registers: [registry] });
    const c = this.config;
    if (c.etcd.endpoints.length > 0) {
      this.etcd = new Etcd3({ hosts: c.etcd.endpoints, dialTimeout: 3000 });
      this.kv = new EtcdKv(this.etcd, `${c.etcd.prefix}data/`);
    } else {
      mkdirSync(c.dataDir, { recursive: true });
      this.kv = await new LevelKv(join(c.dataDir, 'store')).open();
    }
    this.registerClusterGauges(registry);
    this.grpc = await startGrpcServer(c.listen, [...mdsServices(this, registry, this.log), healthService('mds')]);
    this.metrics = await startMetricsServer(registry, c.metrics.host, c.metrics.port, statusRoutes(this));
    this.leadership = this.etcd
      ? new EtcdLeadership(this.etcd, c.etcd.prefix, this.address, c.etcd.sessionTtlS, this.log)
      : new SoleLeadership(this.address);
    this.leadership.on('elected', (fenceKey: string | null) => {
      const gen = ++this.generation;
      leaderGauge.set(1);
      // Writes of this term are fenced on its election key: once the session is gone they fail.
      const kv = fenceKey && this.kv instanceof EtcdKv ? this.kv.fenced(fenceKey) : this.kv;
      const load = (): void => {
        LeaderContext.start(kv, c, this.log).then(
          (ctx) => {
            if (gen !== this.generation || !this.leadership.isLeader()) ctx.stop();
            else this.ctx = ctx;
          },
          (err: Error) => {
            // The store hiccuped: keep trying while this term lasts (clients keep retrying too).
            this.log.error({ err: err.message }, 'loading leader state failed; retrying');
            if (gen === this.generation) setTimeout(load, 1000).unref();
          },
        );
      };
      load();
    });
    this.leadership.on('deposed', () => {
      this.generation++;
      leaderGauge.set(0);
      this.ctx?.stop();
      this.ctx = null;
      this.log.warn('no longer the MDS leader: serving NOT_LEADER');
    });
    await this.leadership.start();
  }

  /** Cluster gauges, read from the leader's state at scrape time (empty on standbys). */
  private registerClusterGauges(registry: Registry): void {
    const node = this;
    new Gauge({
      name: 'tierfs_mds_metaservers', help: 'metaservers by state', labelNames: ['state'], registers: [registry],
      collect() {
        this.reset();
        const ctx = node.leader();
        if (!ctx) return;
        for (const rt of ctx.state.metaserverRuntime.values()) this.inc({ state: rt.state });
      },
    });
    new Gauge({
      name: 'tierfs_mds_copysets', help: 'copysets known to the leader', registers: [registry],
      collect() {
        this.set(node.leader()?.state.copysets.size ?? 0);
      },
    });
    new Gauge({
      name: 'tierfs_mds_filesystems', help: 'filesystems', registers: [registry],
      collect() {
        this.set(node.leader()?.state.filesystems.size ?? 0);
      },
    });
    new Gauge({
      name: 'tierfs_mds_operators', help: 'scheduler operators in flight', registers: [registry],
      collect() {
        this.set(node.leader()?.scheduler.operators.size ?? 0);
      },
    });
  }

  leader(): LeaderContext | null {
    return this.leadership.isLeader() ? this.ctx : null;
  }

  isLeader(): boolean {
    return this.leader() !== null;
  }

  leaderAddress(): string {
    return this.leadership.leaderAddress();
  }

  members(): Promise<MdsMemberInfo[]> {
    return this.leadership.members();
  }

  /** Resolves once this MDS leads and has loaded its state (false after `timeoutMs`). */
  async waitLeading(timeoutMs: number): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if (this.isLeader()) return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    return false;
  }

  async close(): Promise<void> {
    await this.leadership.close();
    this.ctx?.stop();
    this.ctx = null;
    await this.grpc.close();
    await this.metrics.close();
    await this.kv.close();
    this.etcd?.close();
  }
}
