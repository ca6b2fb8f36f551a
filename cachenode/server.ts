// `tierfs cachenode`: a daemon keeping S3 blocks on its local disk for every mount of the
// cluster. Serves CacheNodeService over gRPC, registers with the MDS through heartbeats
// (capacity, usage, hit ratio) and exposes metrics. It never talks to S3: mounts hand it the
// blocks they fetched (or uploaded, with --cache-group-write).
import { hostname } from 'node:os';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { handler, loadProto, startGrpcServer, type RunningServer } from '../common/grpc.js';
import type { Logger } from '../common/log.js';
import { createRegistry, startMetricsServer, type MetricsServer } from '../common/metrics.js';
import { ok, statusOf, StatusCode, TierfsError } from '../common/status.js';
import { MdsClient } from '../mds/client.js';
import type { ProtoGrpcType as CacheNodeProto } from '../proto/gen/cachenode.js';
import type { GetBlockRequest__Output } from '../proto/gen/tierfs/cachenode/GetBlockRequest.js';
import type { PutBlockRequest__Output } from '../proto/gen/tierfs/cachenode/PutBlockRequest.js';
import type { KeysRequest__Output } from '../proto/gen/tierfs/cachenode/KeysRequest.js';
import { clusterAuth } from '../common/cluster-auth.js';
import { BLOCK_KEY, startBlockHttpServer, type BlockHttpServer } from './block-http.js';
import { NodeBlockStore } from './block-store.js';
import type { CachenodeConfig } from './config.js';

const KEY = BLOCK_KEY;
function checkKey(key: string): void {
  if (!KEY.test(key)) throw new TierfsError(StatusCode.INVALID_ARGUMENT, `not a block key: ${JSON.stringify(key).slice(0, 80)}`);
}

export class CacheNode {
  private grpcServer!: RunningServer;
  private blockServer: BlockHttpServer | null = null;
  private metrics!: MetricsServer;
  private mds!: MdsClient;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  nodeId = 0;
  private heartbeatMs: number;

  private constructor(
    readonly config: CachenodeConfig,
    readonly store: NodeBlockStore,
    private readonly log: Logger,
  ) {
    this.heartbeatMs = config.heartbeatMs;
  }

  get address(): string {
    return this.config.advertise ?? this.grpcServer.address;
  }

  /** Where mounts GET blocks over HTTP (the advertised host), or '' when the data plane is off. */
  get blockAddress(): string {
    if (!this.blockServer) return '';
    const host = this.address.slice(0, this.address.lastIndexOf(':'));
    return `${host}:${this.blockServer.address.slice(this.blockServer.address.lastIndexOf(':') + 1)}`;
  }

  get metricsPort(): number {
    return this.metrics.port;
  }

  static async start(config: CachenodeConfig, log: Logger): Promise<CacheNode> {
    const registry = createRegistry('cachenode');
    const store = await NodeBlockStore.open({
      dir: join(config.dataDir, 'blocks'),
      capacityBytes: config.capacityBytes,
      maxFiles: config.maxFiles,
      trimHighWatermark: config.trimHighWatermark,
      trimLowWatermark: config.trimLowWatermark,
      admitWatermark: config.admitWatermark,
      registry,
      logger: log,
    });
    const node = new CacheNode(config, store, log);
    node.metrics = await startMetricsServer(registry, config.metrics.host, config.metrics.port);
    node.grpcServer = await startGrpcServer(config.listen, [node.service()]);
    if (config.blockPort >= 0) {
      const host = config.listen.slice(0, config.listen.lastIndexOf(':')).replace(/^\[|\]$/g, '');
      node.blockServer = await startBlockHttpServer(store, host, config.blockPort, clusterAuth(), log);
    }
    node.mds = new MdsClient(config.mds, { deadlineMs: 5_000, rpcTimeoutMs: 3_000 });
    await node.heartbeat().catch((err: unknown) => log.warn({ err: String(err) }, 'cache node: first heartbeat failed; retrying'));
    node.schedule();
    return node;
  }

  private service(): [grpc.ServiceDefinition, grpc.UntypedServiceImplementation] {
    const def = loadProto<CacheNodeProto>('cachenode.proto').tierfs.cachenode.CacheNodeService.service;
    const wrap = <Req, Res extends object>(fn: (req: Req) => Promise<Res>) =>
      handler<Req, Res & { status: ReturnType<typeof ok> }>(async (req) => {
        try {
          return { ...(await fn(req)), status: ok() };
        } catch (err) {
          return { status: statusOf(err) } as Res & { status: ReturnType<typeof ok> };
        }
      });
    return [
      def,
      {
        GetBlock: wrap(async (req: GetBlockRequest__Output) => {
          checkKey(req.key);
          const b = await this.store.get(req.key, Number(req.size));
          return b ? { found: true, data: b.data, crc32: b.crc32 } : { found: false };
        }),
        PutBlock: wrap(async (req: PutBlockRequest__Output) => {
          checkKey(req.key);
          return { stored: await this.store.put(req.key, req.data, req.crc32) };
        }),
        HasBlocks: wrap(async (req: KeysRequest__Output) => ({ present: req.keys.map((k) => KEY.test(k) && this.store.holds(k)) })),
        EvictBlocks: wrap(async (req: KeysRequest__Output) => {
          req.keys.forEach(checkKey);
          return this.store.evict(req.keys);
        }),
        Stats: wrap(async () => ({ stats: this.store.stats() })),
      },
    ];
  }

  private async heartbeat(): Promise<void> {
    const s = this.store.stats();
    const res = await this.mds.cacheNodeHeartbeat({
      address: this.address,
      host_name: hostname(),
      capacity_bytes: s.capacity_bytes,
      used_bytes: s.used_bytes,
      blocks: s.blocks,
      hit_ratio: s.hit_ratio,
      hits: s.hits,
      misses: s.misses,
      corrupt_blocks: s.corrupt_blocks,
      block_address: this.blockAddress,
    });
    if (this.nodeId !== res.node_id) this.log.info({ nodeId: res.node_id, address: this.address }, 'cache node registered with the MDS');
    this.nodeId = res.node_id;
    if (res.interval_ms > 0) this.heartbeatMs = res.interval_ms;
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.heartbeat()
        .catch((err: unknown) => this.log.warn({ err: String(err) }, 'cache node heartbeat failed'))
        .finally(() => this.schedule());
    }, this.heartbeatMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.grpcServer.close();
    await this.blockServer?.close();
    this.mds.close();
    await this.metrics.close();
    await this.store.close();
  }
}
