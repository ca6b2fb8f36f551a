// The cache group tier: block objects kept by dedicated cache nodes (tierfs cachenode) for
// every mount of the cluster. Blocks are placed by consistent hashing over the members the
// MDS publishes (adding or losing a node moves only its share); a mount asks the block's node
// after its own disk cache and before S3, and hands it the blocks it had to fetch from S3
// (asynchronously, through the BlockReader's admissions). What a node serves is checked
// against the block's length and CRC-32; a damaged block is counted, dropped at the node and
// read from S3. A dead or slow node costs at most `timeoutMs` per block and is then skipped
// for a while: never an error.
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { CHANNEL_OPTIONS, loadProto, unary } from '../common/grpc.js';
import { clientCredentials } from '../common/cluster-auth.js';
import { silentLogger, type Logger } from '../common/log.js';
import type { ProtoGrpcType as CacheNodeProto } from '../proto/gen/cachenode.js';
import type { CacheNodeServiceClient } from '../proto/gen/tierfs/cachenode/CacheNodeService.js';
import type { GetBlockResponse__Output } from '../proto/gen/tierfs/cachenode/GetBlockResponse.js';
import type { PutBlockResponse__Output } from '../proto/gen/tierfs/cachenode/PutBlockResponse.js';
import type { HasBlocksResponse__Output } from '../proto/gen/tierfs/cachenode/HasBlocksResponse.js';
import type { EvictBlocksResponse__Output } from '../proto/gen/tierfs/cachenode/EvictBlocksResponse.js';
import type { StatsResponse__Output } from '../proto/gen/tierfs/cachenode/StatsResponse.js';
import type { BlockCache } from './block-cache.js';
import { BlockHttpClient } from './cache-node-http.js';

function point(s: string): number {
  return createHash('md5').update(s).digest().readUInt32BE(0);
}

/** Consistent hashing: each member owns `vnodes` points of a 32-bit ring; a key goes to the next point clockwise. */
export class HashRing {
  private readonly points: Array<{ at: number; member: string }>;

  constructor(
    readonly members: readonly string[],
    vnodes = 128,
  ) {
    this.points = members.flatMap((m) => Array.from({ length: vnodes }, (_, i) => ({ at: point(`${m}#${i}`), member: m })));
    this.points.sort((a, b) => a.at - b.at || (a.member < b.member ? -1 : 1));
  }

  nodeFor(key: string): string | null {
    if (this.points.length === 0) return null;
    const h = point(key);
    let lo = 0;
    let hi = this.points.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.points[mid]!.at < h) lo = mid + 1;
      else hi = mid;
    }
    return this.points[lo % this.points.length]!.member;
  }
}

/**
 * The calls a mount makes to one cache node: blocks are read over its HTTP data plane when it
 * has one (`blockAddress`), else with GetBlock; everything else is gRPC.
 */
export class CacheNodeClient {
  private readonly client: CacheNodeServiceClient;
  private readonly blocks: BlockHttpClient | null;

  constructor(
    readonly address: string,
    readonly blockAddress = '',
  ) {
    const Svc = loadProto<CacheNodeProto>('cachenode.proto').tierfs.cachenode.CacheNodeService;
    // Blocks are MiBs: a 64 KiB HTTP/2 window would stall every block on round trips.
    this.client = new Svc(address, clientCredentials(), { ...CHANNEL_OPTIONS, 'grpc-node.flow_control_window': 32 * 2 ** 20 });
    this.blocks = blockAddress ? new BlockHttpClient(blockAddress) : null;
  }

  get(key: string, size: number, timeoutMs: number): Promise<Pick<GetBlockResponse__Output, 'found' | 'data' | 'crc32'>> {
    if (this.blocks) return this.blocks.get(key, size, timeoutMs);
    return unary(this.client, 'GetBlock', { key, size }, timeoutMs);
  }

  put(key: string, data: Buffer, timeoutMs: number): Promise<PutBlockResponse__Output> {
    return unary(this.client, 'PutBlock', { key, data, crc32: crc32(data) }, timeoutMs);
  }

  has(keys: string[], timeoutMs: number): Promise<HasBlocksResponse__Output> {
    return unary(this.client, 'HasBlocks', { keys }, timeoutMs);
  }

  evict(keys: string[], timeoutMs: number): Promise<EvictBlocksResponse__Output> {
    return unary(this.client, 'EvictBlocks', { keys }, timeoutMs);
  }

  stats(timeoutMs: number): Promise<StatsResponse__Output> {
    return unary(this.client, 'Stats', {}, timeoutMs);
  }

  close(): void {
    this.client.close();
    this.blocks?.close();
  }
}

export interface CacheGroupMembership {
  /** block_address: the node's HTTP block data plane, if it has one. */
  nodes: Array<{ address: string; block_address?: string }>;
  epoch: number;
  /** A new MDS leader still rebuilding the membership from heartbeats: add, never drop. */
  rebuilding?: boolean;
}

export interface CacheGroupOptions {
  /** Where the members come from (the MDS's ListCacheNodes). */
  membership: () => Promise<CacheGroupMembership>;
  /** How often the membership is refreshed (default 2 s). */
  refreshMs?: number;
  /**
   * A block read from a node that is silent this long (from when it is sent; over the data
   * plane also between pieces of the body) falls through to S3 (default 3 s).
   */
  timeoutMs?: number;
  /**
   * Block reads in flight per node (default 4: a node answers a block once it has read and
   * checked it, so a deeper queue there only makes the last ones wait past the timeout on a
   * busy node); more wait their turn here, and skip the node if it failed meanwhile.
   */
  perNodeConcurrency?: number;
  /** Handing a block to its node (default 10 s; asynchronous, nobody waits). */
  putTimeoutMs?: number;
  /** A node that failed or timed out is skipped this long (default 5 s). */
  suspendMs?: number;
  logger?: Logger;
}

export interface CacheGroupStats {
  members: number;
  epoch: number;
  hits: number;
  misses: number;
  /** Blocks a node served whose length or CRC was wrong: dropped there, read from S3. */
  corrupt: number;
  /** Calls that failed or timed out (the node is then skipped for a while). */
  nodeErrors: number;
  /** Lookups skipped because the block's node was suspended. */
  skipped: number;
  /** Blocks a node refused (full, at its watermark); offers to it then pause for suspendMs. */
  refused: number;
  /** Blocks not offered because their node refused one lately. */
  notOffered: number;
  handedBlocks: number;
  handedBytes: number;
}

export class GroupBlockCache implements BlockCache {
  readonly name = 'group';
  readonly remote = true;
  private ring = new HashRing([]);
  private epoch = 0;
  private readonly clients = new Map<string, CacheNodeClient>();
  /** gRPC address -> block data plane address, as the membership last said. */
  private readonly blockAddresses = new Map<string, string>();
  private readonly suspendedUntil = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private readonly log: Logger;
  private readonly timeoutMs: number;
  private readonly putTimeoutMs: number;
  private readonly suspendMs: number;
  private readonly perNode: number;
  private readonly slots = new Map<string, { running: number; waiters: Array<() => void> }>();
  /** Nodes that refused a block lately (full): no blocks are handed to them until then. */
  private readonly fullUntil = new Map<string, number>();
  readonly counts = { hits: 0, misses: 0, corrupt: 0, nodeErrors: 0, skipped: 0, refused: 0, notOffered: 0, handedBlocks: 0, handedBytes: 0 };

  constructor(private readonly opts: CacheGroupOptions) {
    this.log = opts.logger ?? silentLogger;
    this.timeoutMs = opts.timeoutMs ?? 3_000;
    this.perNode = Math.max(1, opts.perNodeConcurrency ?? 4);
    this.putTimeoutMs = opts.putTimeoutMs ?? 10_000;
    this.suspendMs = opts.suspendMs ?? 5_000;
  }

  /** Loads the membership once, then keeps it fresh in the background. */
  async start(): Promise<void> {
    await this.refresh();
    const loop = () => {
      this.timer = setTimeout(() => void this.refresh().finally(loop), this.opts.refreshMs ?? 2_000);
      this.timer.unref();
    };
    loop();
  }

  /**
   * Takes the published membership. While a new MDS leader is rebuilding it (failover), the
   * nodes it lists are added to the last known ones and none are dropped: a node that has not
   * heartbeated to the new leader yet is still serving. An MDS that does not answer leaves
   * the last membership in place.
   */
  async refresh(): Promise<void> {
    try {
      const m = await this.opts.membership();
      const listed = m.nodes.map((n) => n.address);
      for (const n of m.nodes) if (n.block_address) this.blockAddresses.set(n.address, n.block_address);
      this.setMembers(m.rebuilding ? [...this.ring.members, ...listed] : listed, Number(m.epoch));
    } catch (err) {
      this.log.debug({ err: String(err) }, 'cache group: membership refresh failed; keeping the last one');
    }
  }

  /** Replaces the members (tests, and refresh). */
  setMembers(addresses: string[], epoch = this.epoch + 1): void {
    const sorted = [...new Set(addresses)].sort();
    this.epoch = epoch;
    if (sorted.join(',') === this.ring.members.join(',')) return;
    this.log.info({ members: sorted, epoch }, 'cache group membership');
    this.ring = new HashRing(sorted);
    for (const [addr, c] of this.clients) {
      if (!sorted.includes(addr)) {
        c.close();
        this.clients.delete(addr);
        this.blockAddresses.delete(addr);
      }
    }
  }

  get members(): readonly string[] {
    return this.ring.members;
  }

  nodeFor(key: string): string | null {
    return this.ring.nodeFor(key);
  }

  private client(address: string): CacheNodeClient {
    let c = this.clients.get(address);
    const blockAddress = this.blockAddresses.get(address) ?? '';
    if (c && c.blockAddress !== blockAddress) {
      c.close(); // the node came back with another data port
      c = undefined;
    }
    if (!c) {
      c = new CacheNodeClient(address, blockAddress);
      this.clients.set(address, c);
    }
    return c;
  }

  /** The block's node unless it is suspended. */
  private usable(key: string): string | null {
    const node = this.ring.nodeFor(key);
    if (!node) return null;
    const until = this.suspendedUntil.get(node);
    if (until !== undefined) {
      if (Date.now() < until) return null;
      this.suspendedUntil.delete(node);
    }
    return node;
  }

  private failed(node: string, what: string, err: unknown): void {
    this.counts.nodeErrors++;
    this.suspendedUntil.set(node, Date.now() + this.suspendMs);
    this.log.warn({ node, err: String(err) }, `cache group: ${what} failed; node skipped for ${this.suspendMs} ms`);
  }

  /** Remote: unknown without asking (a suspended node is skipped, and counted, by get). */
  has(): null {
    return null;
  }

  /** Waits for one of the node's request slots; false when the node failed meanwhile (skip it). */
  private async slot(node: string): Promise<boolean> {
    let s = this.slots.get(node);
    if (!s) {
      s = { running: 0, waiters: [] };
      this.slots.set(node, s);
    }
    while (s.running >= this.perNode) await new Promise<void>((r) => s!.waiters.push(r));
    s.running++;
    const until = this.suspendedUntil.get(node);
    if (until !== undefined && Date.now() < until) {
      this.release(node);
      return false;
    }
    return true;
  }

  private release(node: string): void {
    const s = this.slots.get(node);
    if (!s) return;
    s.running--;
    s.waiters.shift()?.();
  }

  async get(key: string, size: number): Promise<Buffer | null> {
    const node = this.usable(key);
    if (!node || !(await this.slot(node))) {
      if (this.ring.members.length > 0) this.counts.skipped++;
      return null;
    }
    let res: Pick<GetBlockResponse__Output, 'found' | 'data' | 'crc32'>;
    try {
      res = await this.client(node).get(key, size, this.timeoutMs);
    } catch (err) {
      this.failed(node, 'GetBlock', err);
      return null;
    } finally {
      this.release(node);
    }
    if (!res.found) {
      this.counts.misses++;
      return null;
    }
    const data = res.data;
    if (data.length !== size || crc32(data) !== res.crc32) {
      this.counts.corrupt++;
      this.log.warn({ node, key, size, got: data.length }, 'cache group: a node served a damaged block; dropped there, reading S3');
      this.client(node)
        .evict([key], this.putTimeoutMs)
        .catch(() => {});
      return null;
    }
    this.counts.hits++;
    return data;
  }

  async readInto(key: string, size: number, from: number, len: number, target: Buffer, at: number): Promise<boolean> {
    const data = await this.get(key, size);
    if (!data) return false;
    data.copy(target, at, from, from + len);
    return true;
  }

  async admit(key: string, data: Buffer): Promise<boolean> {
    const node = this.usable(key);
    if (!node) return false;
    const full = this.fullUntil.get(node);
    if (full !== undefined && Date.now() < full) {
      // The node refused a block lately: sending it 4 MiB it will refuse again is waste.
      this.counts.notOffered++;
      return false;
    }
    try {
      const res = await this.client(node).put(key, data, this.putTimeoutMs);
      if (res.stored) {
        this.counts.handedBlocks++;
        this.counts.handedBytes += data.length;
        this.fullUntil.delete(node);
      } else {
        this.counts.refused++;
        this.fullUntil.set(node, Date.now() + this.suspendMs);
      }
      return res.stored;
    } catch (err) {
      this.failed(node, 'PutBlock', err);
      return false;
    }
  }

  /** Which of these blocks their nodes hold (warmup skips those). */
  async holds(keys: string[]): Promise<Set<string>> {
    const byNode = new Map<string, string[]>();
    for (const k of keys) {
      const n = this.usable(k);
      if (n) byNode.set(n, [...(byNode.get(n) ?? []), k]);
    }
    const out = new Set<string>();
    await Promise.all(
      [...byNode].map(async ([node, ks]) => {
        try {
          const res = await this.client(node).has(ks, this.putTimeoutMs);
          ks.forEach((k, i) => res.present[i] && out.add(k));
        } catch (err) {
          this.failed(node, 'HasBlocks', err);
        }
      }),
    );
    return out;
  }

  /** Drops blocks at their nodes (`tierfs cache evict --group`); the bytes freed. */
  async evictKeys(keys: string[]): Promise<{ blocks: number; bytes: number }> {
    const byNode = new Map<string, string[]>();
    for (const k of keys) {
      const n = this.ring.nodeFor(k);
      if (n) byNode.set(n, [...(byNode.get(n) ?? []), k]);
    }
    const out = { blocks: 0, bytes: 0 };
    await Promise.all(
      [...byNode].map(async ([node, ks]) => {
        try {
          const res = await this.client(node).evict(ks, this.putTimeoutMs);
          out.blocks += Number(res.blocks);
          out.bytes += Number(res.bytes);
        } catch (err) {
          this.failed(node, 'EvictBlocks', err);
        }
      }),
    );
    return out;
  }

  async evict(key: string): Promise<number> {
    return (await this.evictKeys([key])).bytes;
  }

  /** The object is being deleted: its group copy is dropped in the background (LRU would age it out anyway). */
  async remove(key: string): Promise<void> {
    if (this.ring.members.length > 0) void this.evictKeys([key]);
  }

  /** Group-wide eviction is `tierfs cache evict PATH --group`; a mount's evict-all leaves the group alone. */
  async evictAll(): Promise<{ blocks: number; bytes: number }> {
    return { blocks: 0, bytes: 0 };
  }

  stats(): CacheGroupStats {
    return { members: this.ring.members.length, epoch: this.epoch, ...this.counts };
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
