// Prometheus metrics of the disk cache (registry passed in by the daemon).
import type { Registry } from 'prom-client';
import { counter, gauge } from './metrics-util.js';

export class DiskCacheMetrics {
  readonly stagedBlocks;
  readonly stagedBytes;
  readonly bytes;
  readonly files;
  readonly usage;
  readonly hitRatio;
  readonly uploadedBlocks;
  readonly uploadedBytes;
  readonly uploadErrors;
  readonly trimmed;

  constructor(registry: Registry | undefined) {
    this.stagedBlocks = gauge(registry, 'tierfs_diskcache_staged_blocks', 'blocks staged in write/ and not yet uploaded');
    this.stagedBytes = gauge(registry, 'tierfs_diskcache_staged_bytes', 'bytes staged in write/ and not yet uploaded');
    this.bytes = gauge(registry, 'tierfs_diskcache_bytes', 'bytes held by the disk cache (read/, staged included)');
    this.files = gauge(registry, 'tierfs_diskcache_files', 'files held by the disk cache');
    this.usage = gauge(registry, 'tierfs_diskcache_usage_ratio', 'usage against the tightest limit (bytes, disk free, files)');
    this.hitRatio = gauge(registry, 'tierfs_diskcache_hit_ratio', 'read hits / lookups since start');
    this.uploadedBlocks = counter(registry, 'tierfs_diskcache_uploaded_blocks_total', 'staged blocks uploaded to S3');
    this.uploadedBytes = counter(registry, 'tierfs_diskcache_uploaded_bytes_total', 'staged bytes uploaded to S3');
    this.uploadErrors = counter(registry, 'tierfs_diskcache_upload_errors_total', 'failed upload attempts (retried)');
    this.trimmed = counter(registry, 'tierfs_diskcache_trimmed_blocks_total', 'read blocks evicted by trimming');
  }

  uploaded(bytes: number): void {
    this.uploadedBlocks.inc();
    this.uploadedBytes.inc(bytes);
  }

  set(v: { stagedBlocks: number; stagedBytes: number; usedBytes: number; files: number; usage: number; hitRatio: number }): void {
    this.stagedBlocks.set(v.stagedBlocks);
    this.stagedBytes.set(v.stagedBytes);
    this.bytes.set(v.usedBytes);
    this.files.set(v.files);
    this.usage.set(v.usage);
    this.hitRatio.set(v.hitRatio);
  }
}
