// Cache tuning of a running adaptor (`tierfs cache warmup|evict|config`): fetch a file's
// blocks into the disk cache ahead of its readers, drop cached blocks, change the limits.
// Staged blocks are never dropped: they are the only copy until uploaded.
import PQueue from 'p-queue';
import { StatusCode, TierfsError } from '../common/status.js';
import type { DiskCache, DiskCacheLimits } from '../diskcache/index.js';
import type { BlockReader } from './block-reader.js';
import { sliceKeys } from './compaction.js';
import type { InodeState } from './inode-state.js';
import type { ReadPath } from './read-path.js';

export interface WarmupResult {
  /** Blocks holding the file's bytes, and their bytes. */
  blocks: number;
  bytes: number;
  /** Of these, fetched from S3 now ... */
  fetchedBlocks: number;
  fetchedBytes: number;
  /** ... and left out because the cache is at its staging watermark. */
  skippedFull: number;
}

export interface EvictResult {
  blocks: number;
  bytes: number;
}

export interface CacheControlDeps {
  fsId: number;
  chunkSize: number;
  blockSize: number;
  reads: ReadPath;
  blocks: BlockReader;
  disk: DiskCache | null;
  /** Warmup fetches in flight at once. */
  concurrency: number;
}

export class CacheControl {
  constructor(private readonly deps: CacheControlDeps) {}

  async warmup(st: InodeState, fileSize: number): Promise<WarmupResult> {
    if (!this.deps.blocks.tier('disk')) throw new TierfsError(StatusCode.NOT_SUPPORTED, 'this mount has no disk cache to warm (--cache-size 0)');
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.warmOnce(st, fileSize);
      } catch (err) {
        // An object replaced by compaction since the slices were read: read them again.
        if (!(err instanceof TierfsError && err.code === StatusCode.NOT_FOUND) || attempt >= 3) throw err;
        st.invalidate();
      }
    }
  }

  private async warmOnce(st: InodeState, fileSize: number): Promise<WarmupResult> {
    const objects = await this.deps.reads.visibleObjects(st, fileSize);
    const result: WarmupResult = { blocks: objects.length, bytes: 0, fetchedBlocks: 0, fetchedBytes: 0, skippedFull: 0 };
    const queue = new PQueue({ concurrency: this.deps.concurrency });
    await Promise.all(
      objects.map(({ key, size }) =>
        queue.add(async () => {
          result.bytes += size;
          const outcome = await this.deps.blocks.warm(key, size);
          if (outcome === 'fetched') {
            result.fetchedBlocks++;
            result.fetchedBytes += size;
          } else if (outcome === 'full') {
            result.skippedFull++;
          }
        }),
      ),
    );
    return result;
  }

  /** Drops the cached blocks of one inode (every slice's, shadowed ones too). */
  async evict(st: InodeState): Promise<EvictResult> {
    const { fsId, blockSize, chunkSize, blocks } = this.deps;
    const out: EvictResult = { blocks: 0, bytes: 0 };
    for (const [idx, list] of await this.deps.reads.loadSlices(st)) {
      for (const slice of list) {
        for (const key of sliceKeys(fsId, st.ino, idx, slice, blockSize, chunkSize)) {
          const freed = await blocks.evict(key);
          if (freed > 0) {
            out.blocks++;
            out.bytes += freed;
          }
        }
      }
    }
    return out;
  }

  async evictAll(): Promise<EvictResult> {
    return this.deps.blocks.evictAll();
  }

  /** The disk cache's limits after applying `changes` (none: just read them); null without a disk cache. */
  limits(changes?: Partial<DiskCacheLimits>): DiskCacheLimits | null {
    const disk = this.deps.disk;
    if (!disk) return null;
    return changes && Object.keys(changes).length > 0 ? disk.configure(changes) : disk.limits();
  }
}
