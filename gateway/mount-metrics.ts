// The mount's Prometheus metrics (`tierfs mount --metrics-listen HOST:PORT`), beside those the
// object store (tierfs_s3_*: requests, latency and bytes by operation), the disk cache
// (tierfs_diskcache_*) and the write path (tierfs_s3adaptor_*) register themselves:
//   tierfs_mount_fuse_op_seconds{op}, tierfs_mount_fuse_op_errors_total{op}   every FUSE request
//   tierfs_mount_meta_rpc_seconds{method}, tierfs_mount_meta_rpc_errors_total{method}
//   tierfs_mount_cache_hits_total{tier}, tierfs_mount_cache_misses_total{tier}  memory, disk, group
//   tierfs_mount_staged_bytes, tierfs_mount_staged_blocks            backlog not in S3 yet
//   tierfs_mount_uploaded_bytes_total, tierfs_mount_upload_bytes_per_second
//   tierfs_mount_write_buffer_dirty_bytes
// The cache and upload figures are read from the adaptor's counters when Prometheus scrapes.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { S3AdaptorStats } from '../s3adaptor/index.js';
import type { OpObserver } from './op-stats.js';

const LATENCY_BUCKETS = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30];

export interface MountOpObservers {
  fuse: OpObserver;
  meta: OpObserver;
}

function timedOps(registry: Registry, name: string, label: 'op' | 'method', what: string): OpObserver {
  const seconds = new Histogram({ name: `${name}_seconds`, help: `${what} by ${label}: latency`, labelNames: [label], buckets: LATENCY_BUCKETS, registers: [registry] });
  const errors = new Counter({ name: `${name}_errors_total`, help: `${what} by ${label}: failed`, labelNames: [label], registers: [registry] });
  return (op, ms, failed) => {
    seconds.observe({ [label]: op }, ms / 1000);
    if (failed) errors.inc({ [label]: op });
  };
}

/**
 * A counter that follows a running total read at scrape time (the adaptor keeps the totals;
 * Prometheus wants counters): each scrape adds what the total grew by since the last.
 */
class FollowedCounter<L extends string> {
  private readonly seen = new Map<string, number>();
  readonly counter: Counter<L>;

  constructor(registry: Registry, name: string, help: string, labelNames: L[]) {
    this.counter = new Counter({ name, help, labelNames, registers: [registry] });
  }

  follow(labels: Record<L, string>, total: number): void {
    const key = JSON.stringify(labels);
    const grew = total - (this.seen.get(key) ?? 0);
    if (grew > 0) this.counter.inc(labels as Partial<Record<L, string>>, grew);
    this.seen.set(key, total);
  }
}

/** Registers the mount's metrics; the observers go to startGateway (GatewayParts.opObservers). */
export function mountMetrics(registry: Registry, data: { stats(): S3AdaptorStats }): MountOpObservers {
  // Registered first: Prometheus reads metrics in registration order, and this one's collect
  // reads the adaptor's counters once per scrape for the metrics below it.
  new Gauge({
    name: 'tierfs_mount_stats_read_seconds', help: 'time to read the mount\'s counters at the last scrape', registers: [registry],
    collect() {
      const started = process.hrtime.bigint();
      const s = data.stats();
      hits.follow({ tier: 'memory' }, s.read.memHits);
      hits.follow({ tier: 'disk' }, s.read.diskHits);
      hits.follow({ tier: 'group' }, s.read.groupHits);
      misses.follow({ tier: 'memory' }, s.read.memMisses);
      if (s.disk) misses.follow({ tier: 'disk' }, s.disk.misses);
      uploaded.follow({}, s.disk?.uploadedBytes ?? 0);
      gauges.stagedBytes.set(s.disk?.stagedBytes ?? 0);
      gauges.stagedBlocks.set(s.disk?.stagedBlocks ?? 0);
      gauges.uploadRate.set(s.disk?.uploadBytesPerSec ?? 0);
      gauges.dirty.set(s.dirtyBytes);
      this.set(Number(process.hrtime.bigint() - started) / 1e9);
    },
  });
  const hits = new FollowedCounter(registry, 'tierfs_mount_cache_hits_total', 'block lookups served by a cache tier', ['tier']);
  const misses = new FollowedCounter(registry, 'tierfs_mount_cache_misses_total', 'block lookups a cache tier did not hold', ['tier']);
  const uploaded = new FollowedCounter(registry, 'tierfs_mount_uploaded_bytes_total', 'staged bytes uploaded to S3', []);
  const gauges = {
    stagedBytes: new Gauge({ name: 'tierfs_mount_staged_bytes', help: 'bytes staged on the local disk, not in S3 yet', registers: [registry] }),
    stagedBlocks: new Gauge({ name: 'tierfs_mount_staged_blocks', help: 'blocks staged on the local disk, not in S3 yet', registers: [registry] }),
    uploadRate: new Gauge({ name: 'tierfs_mount_upload_bytes_per_second', help: 'staged bytes uploaded per second over the last ~10 s', registers: [registry] }),
    dirty: new Gauge({ name: 'tierfs_mount_write_buffer_dirty_bytes', help: 'written bytes in memory, not staged or uploaded yet', registers: [registry] }),
  };
  return {
    fuse: timedOps(registry, 'tierfs_mount_fuse_op', 'op', 'FUSE requests'),
    meta: timedOps(registry, 'tierfs_mount_meta_rpc', 'method', 'metadata calls'),
  };
}
