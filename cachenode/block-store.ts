// The cache node's blocks on its local disk: the read side of a DiskCache (LRU, capacity,
// watermarks, trimming, recovery at start), each block stored with an 8-byte trailer —
// CRC-32 of the data and a magic — so what is served is checked against its length and
// checksum first. A damaged block is dropped and answered as a miss (and counted).
import { crc32 } from 'node:zlib';
import type { Registry } from 'prom-client';
import type { Logger } from '../common/log.js';
import { DiskCache } from '../diskcache/index.js';
import { counter } from '../diskcache/metrics-util.js';

const MAGIC = 0x7469_6331; // "tic1"
const TRAILER = 8;

export interface StoredBlock {
  data: Buffer;
  crc32: number;
}

export interface BlockStoreOptions {
  dir: string;
  capacityBytes: number;
  maxFiles: number;
  trimHighWatermark: number;
  trimLowWatermark: number;
  admitWatermark: number;
  registry?: Registry;
  logger: Logger;
}

export class NodeBlockStore {
  readonly counts = { hits: 0, misses: 0, stored: 0, refused: 0, corrupt: 0, evicted: 0, servedBytes: 0 };
  private readonly metrics;

  private constructor(
    private readonly disk: DiskCache,
    private readonly log: Logger,
    registry: Registry | undefined,
  ) {
    this.metrics = {
      hits: counter(registry, 'tierfs_cachenode_hits_total', 'blocks served'),
      misses: counter(registry, 'tierfs_cachenode_misses_total', 'blocks asked for and not held'),
      corrupt: counter(registry, 'tierfs_cachenode_corrupt_blocks_total', 'blocks found damaged (length or CRC) when served, dropped'),
      stored: counter(registry, 'tierfs_cachenode_stored_blocks_total', 'blocks accepted from mounts'),
      servedBytes: counter(registry, 'tierfs_cachenode_served_bytes_total', 'bytes of blocks served'),
    };
  }

  static async open(o: BlockStoreOptions): Promise<NodeBlockStore> {
    const disk = await DiskCache.open({
      dir: o.dir,
      capacityBytes: o.capacityBytes,
      maxFiles: o.maxFiles,
      // Never staged: a cache node only keeps copies of blocks that are in S3.
      store: { put: () => Promise.reject(new Error('a cache node stages nothing')) },
      stageWatermark: o.admitWatermark,
      trimHighWatermark: o.trimHighWatermark,
      trimLowWatermark: o.trimLowWatermark,
      fsync: false,
      registry: o.registry,
      logger: o.logger,
    });
    return new NodeBlockStore(disk, o.logger, o.registry);
  }

  /** The block if held and intact; null on a miss (a damaged copy is dropped and counted). */
  async get(key: string, size: number): Promise<StoredBlock | null> {
    const raw = await this.disk.get(key);
    if (!raw) {
      this.miss();
      return null;
    }
    const data = raw.subarray(0, raw.length - TRAILER);
    const ok =
      raw.length >= TRAILER &&
      raw.readUInt32LE(raw.length - 4) === MAGIC &&
      data.length === size &&
      crc32(data) === raw.readUInt32LE(raw.length - TRAILER);
    if (!ok) {
      this.counts.corrupt++;
      this.metrics.corrupt.inc();
      this.log.warn({ key, size, stored: raw.length - TRAILER }, 'cache node: damaged block dropped (length or CRC mismatch)');
      await this.disk.evict(key);
      this.miss();
      return null;
    }
    this.counts.hits++;
    this.metrics.hits.inc();
    this.counts.servedBytes += data.length;
    this.metrics.servedBytes.inc(data.length);
    return { data, crc32: raw.readUInt32LE(raw.length - TRAILER) };
  }

  private miss(): void {
    this.counts.misses++;
    this.metrics.misses.inc();
  }

  /** Stores a block whose CRC the sender computed; false when refused (CRC mismatch, full). */
  async put(key: string, data: Buffer, crc: number): Promise<boolean> {
    if (crc32(data) !== crc) {
      this.counts.refused++;
      return false;
    }
    const trailer = Buffer.alloc(TRAILER);
    trailer.writeUInt32LE(crc >>> 0, 0);
    trailer.writeUInt32LE(MAGIC, 4);
    const ok = await this.disk.put(key, Buffer.concat([data, trailer]));
    if (ok) {
      this.counts.stored++;
      this.metrics.stored.inc();
    } else this.counts.refused++;
    return ok;
  }

  /** Whether the node holds the block (any size; not checked). */
  holds(key: string): boolean {
    return this.disk.stats().files > 0 && this.disk.hasKey(key);
  }

  async evict(keys: string[]): Promise<{ blocks: number; bytes: number }> {
    const out = { blocks: 0, bytes: 0 };
    for (const k of keys) {
      const freed = await this.disk.evict(k);
      if (freed > 0) {
        out.blocks++;
        out.bytes += Math.max(0, freed - TRAILER);
        this.counts.evicted++;
      }
    }
    return out;
  }

  stats() {
    const d = this.disk.stats();
    const lookups = this.counts.hits + this.counts.misses;
    return {
      capacity_bytes: d.capacityBytes,
      used_bytes: d.usedBytes,
      blocks: d.files,
      hits: this.counts.hits,
      misses: this.counts.misses,
      hit_ratio: lookups === 0 ? 0 : this.counts.hits / lookups,
      stored_blocks: this.counts.stored,
      corrupt_blocks: this.counts.corrupt,
      evicted_blocks: this.counts.evicted + d.trimmedBlocks,
      served_bytes: this.counts.servedBytes,
      usage: d.usage,
    };
  }

  /** Waits for a trim in flight (tests). */
  async trimmed(): Promise<void> {
    await this.disk.trimNow();
  }

  /** Test hook: the file holding a block (to damage it). */
  pathOf(key: string): string {
    return `${this.disk.readDir}/${key}`;
  }

  close(): Promise<void> {
    return this.disk.close();
  }
}
