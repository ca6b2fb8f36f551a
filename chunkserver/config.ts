// `tierfs chunkserver --config FILE`: the daemon's configuration.
import { hostname } from 'node:os';
import { addressList, hostPort, metricsSchema, z } from '../common/config.js';
import { clusterAuthConfig } from '../common/cluster-auth.js';

export const chunkserverConfigSchema = z.object({
  /** Chunk files, the chunk-file pool, raft logs and the registration token. */
  dataDir: z.string().min(1),
  /** gRPC address served (chunk, copyset admin, raft, health); also this server's raft id, so the port must be fixed. */
  listen: hostPort.refine((s) => !s.endsWith(':0'), 'the port must be fixed: it is the raft id of this chunkserver'),
  /** MDS addresses; empty = standalone (copysets only through CopysetService). */
  mds: z.union([addressList, z.array(hostPort).length(0)]).default([]),
  zone: z.string().min(1).default('zone1'),
  hostName: z.string().min(1).default(hostname()),
  /** Chunkserver pool name (the MDS keeps its copysets in "chunk:<pool>"). */
  pool: z.string().min(1).default('default'),
  heartbeatIntervalMs: z.number().int().min(100).default(2000),
  /** Size of every chunk file; must match the MDS's volumes.chunkSize. */
  chunkSize: z.number().int().min(1 << 20).max(1 << 30).refine((n) => n % 4096 === 0, 'a multiple of 4096').default(16 << 20),
  /** Zero-filled chunk files the pool keeps ready. */
  chunkPool: z.object({ target: z.number().int().min(0).default(8) }).prefault({}),
  raft: z
    .object({
      tickMs: z.number().int().min(1).default(100),
      electionTicks: z.number().int().min(2).default(10),
      heartbeatTicks: z.number().int().min(1).default(1),
      /** Entries carry up to 1 MiB of data each: compact (snapshot = chunk files) sooner than the metaserver does. */
      snapshotThreshold: z.number().int().min(1).default(2000),
    })
    .prefault({}),
  metrics: metricsSchema,
  ...clusterAuthConfig,
});

export type ChunkServerConfig = z.output<typeof chunkserverConfigSchema>;
