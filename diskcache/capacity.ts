// Capacity: how full the cache is against its limits (bytes, files, the disk's free space),
// the watermarks staging and admission obey, and trimming of least recently used read
// blocks. Usage is derived from staging + read cache, so it cannot drift from them.
import { statfs } from 'node:fs/promises';
import { unlinkQuiet } from './files.js';
import type { Logger } from '../common/log.js';
import type { DiskCacheLimits } from './limits.js';
import type { DiskCacheMetrics } from './metrics.js';
import type { ReadCache } from './read-cache.js';
import type { Staging } from './staging.js';

export interface Usage {
  bytes: number;
  files: number;
  max: number;
}

export class Capacity {
  diskFreeBytes = Number.MAX_SAFE_INTEGER;
  private trimming: Promise<void> | null = null;
  trimmedBlocks = 0;

  constructor(
    private readonly dir: string,
    private readonly limits: DiskCacheLimits,
    private readonly staging: Staging,
    private readonly cache: ReadCache,
    private readonly metrics: DiskCacheMetrics,
    private readonly log: Logger,
  ) {}

  get usedBytes(): number {
    return this.staging.bytes + this.cache.bytes;
  }

  get files(): number {
    return this.staging.count + this.cache.count;
  }

  usage(extraBytes = 0, extraFiles = 0): Usage {
    const used = this.usedBytes;
    const byteLimit = Math.max(1, Math.min(this.limits.capacityBytes, used + this.diskFreeBytes));
    const bytes = (used + extraBytes) / byteLimit;
    const files = (this.files + extraFiles) / this.limits.maxFiles;
    return { bytes, files, max: Math.max(bytes, files) };
  }

  /** True when a block of this size may be staged without crossing the stage watermark. */
  canStage(size: number): boolean {
    return this.usage(size, 1).max < this.limits.stageWatermark;
  }

  /**
   * Whether a fetched block may be admitted. One that would cross the high watermark starts a
   * trim and waits for it (else a cache just under the watermark would refuse every block and
   * never trim), then must fit under the stage watermark.
   */
  async admit(size: number): Promise<boolean> {
    if (this.usage(size, 1).max < this.limits.trimHighWatermark) return true;
    await this.trimNow(size);
    return this.usage(size, 1).max < this.limits.stageWatermark;
  }

  get stagingPaused(): boolean {
    return this.usage().max >= this.limits.stageWatermark;
  }

  async sample(): Promise<void> {
    const st = await statfs(this.dir);
    this.diskFreeBytes = st.bavail * st.bsize;
  }

  /**
   * Until the next free-space sample the disk counts as full: no staging, no read-cache
   * admission, and trimming starts, which is what frees room on a disk we share.
   */
  diskFull(err: unknown): void {
    this.diskFreeBytes = 0;
    this.log.warn({ dir: this.dir, err: (err as Error).message }, 'disk cache: the disk is full or failing; blocks go straight to S3');
    this.maybeTrim();
  }

  /** Starts a trim when usage (plus `extraBytes` about to be added) is at the high watermark. */
  maybeTrim(extraBytes = 0): void {
    if (this.trimming || this.usage(extraBytes, extraBytes > 0 ? 1 : 0).max < this.limits.trimHighWatermark) return;
    this.trimming = this.trim().finally(() => {
      this.trimming = null;
    });
  }

  /** Evicts least recently used read blocks down to the low watermark; staged blocks are not in the LRU. */
  private async trim(): Promise<void> {
    while (this.usage().max > this.limits.trimLowWatermark) {
      const key = this.cache.oldest();
      if (key === undefined) break;
      this.cache.forget(key);
      await this.unlink(key);
      this.trimmedBlocks++;
      this.metrics.trimmed.inc();
    }
  }

  private async unlink(key: string): Promise<void> {
    await unlinkQuiet(this.cache.path(key)).catch((err: unknown) => this.log.warn({ key, err: String(err) }, 'disk cache: trim unlink failed'));
  }

  /** Trims now if above the high watermark (counting `extraBytes` about to be added); resolves when done. */
  async trimNow(extraBytes = 0): Promise<void> {
    this.maybeTrim(extraBytes);
    await this.trimming;
  }

  /** Waits for a trim in flight. */
  async idle(): Promise<void> {
    await this.trimming;
  }
}
