// Cache tuning of a running adaptor (`tierfs cache warmup|evict|config`): fetch a file's
// blocks into the disk cache ahead of its readers, drop cached blocks, change the limits.
// Staged blocks are never dropped: they are the only copy until uploaded.
import PQueue from 'p-queue';
import { StatusCode, TierfsError } from '../common/status.js';
import type { DiskCache, DiskCacheLimits } from '../diskcache/index.js';
import { checkedSize, type BlockReader } from './block-reader.js';
import type { GroupBlockCache } from './cache-group.js';
import type { ObjectStore } from './object-store.js';
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
  group: GroupBlockCache | null;
  store: ObjectStore;
  /** Warmup fetches in flight at once. */
  concurrency: number;
}

/** Where `tierfs cache warmup|evict` act: this mount's disk cache, or the cache group (--group). */
export interface CacheTarget {
  group?: boolean;
}

export class CacheControl {
  constructor(private readonly deps: CacheControlDeps) {}

  async warmup(st: InodeState, fileSize: number, target: CacheTarget = {}): Promise<WarmupResult> {
    if (target.group) return this.retrying(st, () => this.warmGroup(st, fileSize));
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

  private async retrying(st: InodeState, fn: () => Promise<WarmupResult>): Promise<WarmupResult> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!(err instanceof TierfsError && err.code === StatusCode.NOT_FOUND) || attempt >= 3) throw err;
        st.invalidate();
      }
    }
  }

  /**
   * Fills the cache group with the file's visible blocks: blocks their nodes hold already are
   * skipped; the others are read (memory, disk cache, else S3) and handed to their nodes.
   */
  private async warmGroup(st: InodeState, fileSize: number): Promise<WarmupResult> {
    const group = this.deps.group;
    if (!group || group.members.length === 0) throw new TierfsError(StatusCode.NOT_SUPPORTED, 'no cache group: no cache node is registered with the MDS');
    const objects = await this.deps.reads.visibleObjects(st, fileSize);
    const held = await group.holds(objects.map((o) => o.key));
    const result: WarmupResult = { blocks: objects.length, bytes: 0, fetchedBlocks: 0, fetchedBytes: 0, skippedFull: 0 };
    const queue = new PQueue({ concurrency: this.deps.concurrency });
    await Promise.all(
      objects.map(({ key, size }) =>
        queue.add(async () => {
          result.bytes += size;
          if (held.has(key)) return;
          const data = this.deps.blocks.memory.peek(key) ?? (await this.deps.disk?.get(key)) ?? checkedSize(key, await this.deps.store.get(key), size);
          if (data.length !== size) throw new TierfsError(StatusCode.NOT_FOUND, `block ${key}: ${data.length} bytes, its slice says ${size}`);
          if (await group.admit(key, data)) {
            result.fetchedBlocks++;
            result.fetchedBytes += size;
          } else {
            result.skippedFull++;
          }
        }),
      ),
    );
    return result;
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

  /** Drops the cached blocks of one inode (every slice's, shadowed ones too); --group: at the cache nodes. */
  async evict(st: InodeState, target: CacheTarget = {}): Promise<EvictResult> {
    const { fsId, blockSize, chunkSize, blocks } = this.deps;
    if (target.group) {
      if (!this.deps.group) throw new TierfsError(StatusCode.NOT_SUPPORTED, 'no cache group on this mount');
      const keys: string[] = [];
      for (const [idx, list] of await this.deps.reads.loadSlices(st)) for (const slice of list) keys.push(...sliceKeys(fsId, st.ino, idx, slice, blockSize, chunkSize));
      return this.deps.group.evictKeys(keys);
    }
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
