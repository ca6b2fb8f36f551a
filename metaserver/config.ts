// `tierfs metaserver --config FILE`: the daemon's configuration.
import { hostname } from 'node:os';
import { addressList, hostPort, metricsSchema, z } from '../common/config.js';
import { clusterAuthConfig } from '../common/cluster-auth.js';

export const metaserverConfigSchema = z.object({
  /** Holds the level database of every copyset, the raft logs and the registration token. */
  dataDir: z.string().min(1),
  /** gRPC address served (metaserver, copyset admin, raft, health); also this server's raft id, so the port must be fixed. */
  listen: hostPort.refine((s) => !s.endsWith(':0'), 'the port must be fixed: it is the raft id of this metaserver'),
  /** MDS addresses; empty = standalone (copysets and partitions only through CopysetService). */
  mds: z.union([addressList, z.array(hostPort).length(0)]).default([]),
  zone: z.string().min(1).default('zone1'),
  hostName: z.string().min(1).default(hostname()),
  pool: z.string().min(1).default('default'),
  heartbeatIntervalMs: z.number().int().min(100).default(2000),
  /** How often a copyset leader empties its trash and looks for abandoned renames. */
  backgroundIntervalMs: z.number().int().min(50).default(1000),
  /** A prepared rename older than this is resolved by the destination's leader. */
  txResolveAfterMs: z.number().int().min(100).default(5000),
  /** How long a rename's outcome stays recorded at its source partition (must outlast any outage of the destination). */
  txRetentionMs: z.number().int().min(60_000).default(24 * 3600_000),
  raft: z
    .object({
      tickMs: z.number().int().min(1).default(100),
      electionTicks: z.number().int().min(2).default(10),
      heartbeatTicks: z.number().int().min(1).default(1),
      snapshotThreshold: z.number().int().min(1).default(10_000),
    })
    .prefault({}),
  /** Delete the objects of trashed inodes from S3 (credentials from the MDS's FsInfo). */
  deleteObjects: z.boolean().default(true),
  metrics: metricsSchema,
  ...clusterAuthConfig,
});

export type MetaServerConfig = z.output<typeof metaserverConfigSchema>;
