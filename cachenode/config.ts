// The cache node daemon's configuration (YAML file, flags, --set), validated by zod.
import { z, hostPort, metricsSchema } from '../common/config.js';
import { clusterAuthConfig } from '../common/cluster-auth.js';

export const cachenodeConfigSchema = z.object({
  /** gRPC listen address of the CacheNodeService; port 0 picks a free port. */
  listen: hostPort.default('127.0.0.1:6800'),
  /** Address mounts use to reach this node; defaults to the bound listen address. */
  advertise: hostPort.optional(),
  /**
   * Port of the block data plane (HTTP/1.1 GET /blocks/KEY, on the listen host; 0 picks a free
   * one; -1 turns it off and mounts read blocks with GetBlock over gRPC).
   */
  blockPort: z.number().int().min(-1).max(65535).default(0),
  /** MDS addresses, comma-separated host:port. */
  mds: z.string().min(1),
  /** Where blocks are kept (a `read/` directory under it). */
  dataDir: z.string().min(1).default('./cachenode-data'),
  /** Byte cap of the blocks held; least recently used blocks go first past the high watermark. */
  capacityBytes: z.number().int().min(1).default(10 * 2 ** 30),
  maxFiles: z.number().int().min(1).default(1_000_000),
  /** Trimming starts at this fraction of the limits (bytes, files, disk free) ... */
  trimHighWatermark: z.number().gt(0).max(1).default(0.9),
  /** ... and evicts down to this one. */
  trimLowWatermark: z.number().gt(0).max(1).default(0.8),
  /** New blocks are refused at this fraction (the node is full). */
  admitWatermark: z.number().gt(0).max(1).default(0.95),
  /** Heartbeat interval until the MDS asks for another. */
  heartbeatMs: z.number().int().min(50).default(1_000),
  metrics: metricsSchema,
  ...clusterAuthConfig,
});

export type CachenodeConfig = z.output<typeof cachenodeConfigSchema>;
