// Builds the gateway's parts over the real cluster: MDS mountFs -> FsInfo -> object store +
// disk cache + S3Adaptor + RemoteMetaClient, with a session kept alive at the MDS and
// deregistered at shutdown. `tierfs mount` passes the result to startGateway.
import { hostname } from 'node:os';
import type { Registry } from 'prom-client';
import { join } from 'node:path';
import { silentLogger, type Logger } from '../common/log.js';
import { DiskCache } from '../diskcache/index.js';
import { MdsClient, type FsInfo } from '../mds/client.js';
import { RemoteMetaClient } from '../metaserver/client.js';
import { QuotaClient } from '../metaserver/quota-client.js';
import { S3Adaptor, createObjectStore } from '../s3adaptor/index.js';
import { GroupBlockCache } from '../s3adaptor/cache-group.js';
import { sliceStoreOf } from './file-data.js';
import { mountMetrics } from './mount-metrics.js';
import { mountReporter } from './mount-report.js';
import type { GatewayParts } from './mount.js';

export interface ClusterMountOptions {
  mdsAddrs: string;
  fsName: string;
  mountpoint: string;
  /** Disk cache directory (write/ and read/); null disables the disk cache. */
  cacheDir: string | null;
  cacheSizeBytes: number;
  writeback: boolean;
  /**
   * With writeback: staged blocks upload once writes paused this long (default 1 s), or at
   * once past a quarter of the cache staged (see diskcache's uploadDelayMs).
   */
  uploadDelayMs?: number;
  logger?: Logger;
  /** How long metadata calls keep retrying before failing with EIO (`tierfs mount --meta-timeout`, 10 s; library default 30 s). */
  metaDeadlineMs?: number;
  /** How long S3 may take before close/fsync stage locally or answer EIO, and uncached reads answer EIO (default 30 s). */
  s3TimeoutMs?: number;
  /** Read through the cache group (cache nodes registered with the MDS; default true). */
  cacheGroup?: boolean;
  /** Also hand blocks this mount writes to S3 to the cache group. */
  cacheGroupWrite?: boolean;
  /** How often the mount purges expired recycle-bin entries (default 60 s). */
  trashSweepMs?: number;
  /** Prometheus registry of the mount (`--metrics-listen`): S3, disk cache, write path and mount metrics go there. */
  registry?: Registry;
}

export interface ClusterParts extends GatewayParts {
  fsInfo: FsInfo;
  sessionId: string;
}

export async function connectCluster(opts: ClusterMountOptions): Promise<ClusterParts> {
  const log = opts.logger ?? silentLogger;
  const mds = new MdsClient(opts.mdsAddrs);
  let mounted: Awaited<ReturnType<MdsClient['mountFs']>>;
  try {
    mounted = await mds.mountFs(opts.fsName, { host: hostname(), path: opts.mountpoint, pid: process.pid });
  } catch (err) {
    mds.close();
    throw err;
  }
  const { fs, sessionId, ttlMs } = mounted;
  if (!fs.s3) throw new Error(`filesystem ${opts.fsName} has no S3 settings (fs_type ${fs.fs_type})`);
  const objectStore = createObjectStore({
    endpoint: fs.s3.endpoint,
    bucket: fs.s3.bucket,
    accessKeyId: fs.s3.access_key,
    secretAccessKey: fs.s3.secret_key,
    region: fs.s3.region || 'us-east-1',
    keyPrefix: fs.s3.key_prefix,
    logger: log,
    registry: opts.registry,
  });
  const diskCache = opts.cacheDir
    ? await DiskCache.open({
      dir: join(opts.cacheDir, 'blocks'), capacityBytes: opts.cacheSizeBytes, store: objectStore, logger: log, registry: opts.registry,
      uploadDelayMs: opts.writeback ? (opts.uploadDelayMs ?? 1000) : 0,
    })
    : null;
  const group = opts.cacheGroup === false ? null : new GroupBlockCache({ membership: () => mds.listCacheNodes(), logger: log });
  await group?.start();
  const meta = new RemoteMetaClient({ fsId: fs.fs_id, mds, logger: log, deadlineMs: opts.metaDeadlineMs });
  const data = new S3Adaptor({
    fsId: fs.fs_id,
    chunkSize: Number(fs.chunk_size),
    blockSize: Number(fs.block_size),
    objectStore,
    sliceStore: sliceStoreOf(meta),
    chunkIds: { allocate: (count) => mds.allocateChunkIds(fs.fs_id, count) },
    diskCache,
    writeback: opts.writeback,
    s3TimeoutMs: opts.s3TimeoutMs,
    cacheGroup: group,
    cacheGroupWrite: opts.cacheGroupWrite,
    logger: log,
    registry: opts.registry,
  });

  // A session that stops refreshing expires at the MDS; refresh at a third of its TTL. Each
  // refresh carries the mount's report for the status page (backlog, rates, version).
  let lastRefreshOk = Date.now();
  const report = mountReporter(data);
  const refresh = setInterval(() => {
    mds.refreshSession(sessionId, {}, report()).then(
      () => (lastRefreshOk = Date.now()),
      (err: unknown) => log.warn({ err: String(err) }, 'could not refresh the mount session at the MDS'),
    );
  }, Math.max(1000, Math.floor((ttlMs || 20_000) / 3)));
  refresh.unref();

  let closed = false;
  return {
    fsInfo: fs,
    sessionId,
    meta,
    data,
    quotas: new QuotaClient(meta),
    ...(opts.registry ? { opObservers: mountMetrics(opts.registry, data) } : {}),
    trash: { days: fs.trash_days ?? 0, ...(opts.trashSweepMs ? { sweepMs: opts.trashSweepMs } : {}) },
    describe: () => ({ fs: fs.name, fsId: fs.fs_id, sessionId, lastSessionRefreshMs: Date.now() - lastRefreshOk }),
    // startGateway calls these after the adaptor and the metadata client are closed.
    closeExtra: async () => {
      group?.close();
      await diskCache?.close();
    },
    deregister: async () => {
      if (closed) return;
      closed = true;
      clearInterval(refresh);
      try {
        await mds.umountFs(opts.fsName, sessionId);
      } finally {
        mds.close();
      }
    },
  };
}
