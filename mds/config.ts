// The MDS daemon's configuration (YAML file, flags, --set), validated by zod.
import { z, hostPort, metricsSchema } from '../common/config.js';
import { clusterAuthConfig } from '../common/cluster-auth.js';

const urlList = z.union([
  z.array(z.string().url()),
  z
    .string()
    .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean))
    .pipe(z.array(z.string().url())),
]);

export const mdsConfigSchema = z.object({
  /** gRPC listen address; port 0 picks a free port. */
  listen: hostPort.default('127.0.0.1:6700'),
  /** Address other processes use to reach this MDS (leader hints); defaults to the bound listen address. */
  advertise: hostPort.optional(),
  /** Directory of the embedded store (used when no etcd endpoints are configured). */
  dataDir: z.string().min(1).default('./mds-data'),
  etcd: z
    .object({
      endpoints: urlList.default([]),
      /** Key prefix of every MDS key in etcd, so several clusters can share one etcd. */
      prefix: z.string().min(1).default('/tierfs/').transform((p) => (p.endsWith('/') ? p : `${p}/`)),
      /** Election session TTL: a dead leader is replaced within about this time. */
      sessionTtlS: z.number().int().min(1).max(600).default(5),
    })
    .prefault({}),
  metrics: metricsSchema,
  sessions: z
    .object({ ttlMs: z.number().int().min(500).default(20_000), checkIntervalMs: z.number().int().min(50).default(1000) })
    .prefault({}),
  ids: z
    .object({
      /** Chunk ids reserved in the store per write; ids of an unused bundle are skipped after a failover. */
      chunkIdBundle: z.number().int().min(1).default(1000),
      maxChunkIdsPerCall: z.number().int().min(1).default(1_000_000),
    })
    .prefault({}),
  partitions: z
    .object({
      /** Inode ids per partition. */
      size: z.number().int().min(16).default(2 ** 20),
      /** Partitions a new filesystem gets. */
      perFs: z.number().int().min(1).max(1000).default(3),
      /** How long to wait for a new copyset to elect a leader before CreatePartition gives up. */
      createTimeoutMs: z.number().int().min(100).default(30_000),
    })
    .prefault({}),
  copysets: z
    .object({
      replicas: z.number().int().min(1).max(7).default(3),
      /** Target copysets = online metaservers * perServer / replicas (at least one), unless `total` > 0. */
      perServer: z.number().int().min(1).default(3),
      total: z.number().int().min(0).default(0),
    })
    .prefault({}),
  health: z
    .object({
      unstableAfterMs: z.number().int().min(100).default(10_000),
      offlineAfterMs: z.number().int().min(100).default(30_000),
      checkIntervalMs: z.number().int().min(50).default(1000),
    })
    .prefault({}),
  scheduler: z
    .object({
      enabled: z.boolean().default(true),
      intervalMs: z.number().int().min(50).default(2000),
      operatorTimeoutMs: z.number().int().min(100).default(60_000),
      balanceCopysets: z.boolean().default(true),
      balanceLeaders: z.boolean().default(true),
      /**
       * A server is the target of an operator (new peer, new leader) only if it heartbeated
       * within this long (2.5 heartbeats at the metaserver's default 2 s) and no copyset leader
       * reports it unreachable; balancing waits while any server is not such a target.
       */
      targetFreshMs: z.number().int().min(100).default(5000),
    })
    .prefault({}),
  deletion: z
    .object({ intervalMs: z.number().int().min(100).default(5000) })
    .prefault({}),
  ...clusterAuthConfig,
  /** Block volumes on chunkservers (issue 13). */
  volumes: z
    .object({
      /** Chunk file size; must match the chunkservers' chunkSize. */
      chunkSize: z.number().int().min(1 << 20).max(1 << 30).default(16 << 20),
      /** Space is allocated in segments of segmentSize / chunkSize chunks, on first write. */
      segmentSize: z.number().int().min(1 << 20).default(1 << 30),
      /** A deleted volume stays in the recycle bin (recoverable) this long, then its chunks are deleted. */
      recycleRetentionMs: z.number().int().min(0).default(24 * 3600_000),
      /** How often the leader looks for volumes to purge and attach sessions that stopped refreshing. */
      checkIntervalMs: z.number().int().min(50).default(2000),
    })
    .prefault({})
    .refine((v) => v.segmentSize % v.chunkSize === 0, 'volumes.segmentSize must be a multiple of volumes.chunkSize'),
  s3: z
    .object({
      /** CreateFs checks the bucket with HeadBucket; turn off only for offline tests. */
      headBucket: z.boolean().default(true),
      timeoutMs: z.number().int().min(100).default(5000),
    })
    .prefault({}),
});

export type MdsConfig = z.output<typeof mdsConfigSchema>;
