// The cache group as the MDS sees it: cache nodes (tierfs cachenode) register with their
// first heartbeat and stay members while they keep sending them. Held by the leader in
// memory only, one registry per leadership term: after a failover the nodes' next heartbeats
// rebuild it. Until every live node has had time to heartbeat (offlineAfterMs), the published
// membership says it is `rebuilding`, and mounts keep the nodes they knew.
import type { CacheNodeHeartbeatRequest__Output } from '../proto/gen/tierfs/heartbeat/CacheNodeHeartbeatRequest.js';
import type { CacheNodeInfo } from '../proto/gen/tierfs/mds/CacheNodeInfo.js';

export interface CacheGroupOptions {
  /** Heartbeat interval asked of the nodes. */
  intervalMs: number;
  /** A node silent this long is OFFLINE and leaves the published membership. */
  offlineAfterMs: number;
}

interface Member {
  id: number;
  info: CacheNodeHeartbeatRequest__Output;
  lastHeartbeatMs: number;
}

export class CacheGroupRegistry {
  private readonly byAddress = new Map<string, Member>();
  private nextId = 1;
  private epoch = 1;
  private lastOnline = '';

  /** When this registry started (this MDS's leadership term began). */
  private readonly startedMs: number;

  constructor(
    readonly opts: CacheGroupOptions = { intervalMs: 1_000, offlineAfterMs: 5_000 },
    now = Date.now(),
  ) {
    this.startedMs = now;
  }

  heartbeat(req: CacheNodeHeartbeatRequest__Output, now = Date.now()): { nodeId: number; intervalMs: number } {
    let m = this.byAddress.get(req.address);
    if (!m) {
      m = { id: this.nextId++, info: req, lastHeartbeatMs: now };
      this.byAddress.set(req.address, m);
    }
    m.info = req;
    m.lastHeartbeatMs = now;
    return { nodeId: m.id, intervalMs: this.opts.intervalMs };
  }

  private online(m: Member, now: number): boolean {
    return now - m.lastHeartbeatMs <= this.opts.offlineAfterMs;
  }

  private toInfo(m: Member, now: number): CacheNodeInfo {
    const i = m.info;
    return {
      id: m.id,
      address: i.address,
      host_name: i.host_name,
      state: this.online(m, now) ? 'ONLINE' : 'OFFLINE',
      last_heartbeat_ms: m.lastHeartbeatMs,
      capacity_bytes: i.capacity_bytes,
      used_bytes: i.used_bytes,
      blocks: i.blocks,
      hit_ratio: i.hit_ratio,
      hits: i.hits,
      misses: i.misses,
      corrupt_blocks: i.corrupt_blocks,
      block_address: i.block_address,
    };
  }

  /** Every node ever seen since this MDS leads (for status), by id. */
  all(now = Date.now()): CacheNodeInfo[] {
    return [...this.byAddress.values()].sort((a, b) => a.id - b.id).map((m) => this.toInfo(m, now));
  }

  /**
   * The published membership: ONLINE nodes, an epoch that changes whenever it does, and
   * whether it may still lack live nodes (this term is younger than offlineAfterMs).
   */
  members(now = Date.now()): { nodes: CacheNodeInfo[]; epoch: number; rebuilding: boolean } {
    const nodes = this.all(now).filter((n) => n.state === 'ONLINE');
    const sig = nodes.map((n) => n.address).join(',');
    if (sig !== this.lastOnline) {
      this.lastOnline = sig;
      this.epoch++;
    }
    return { nodes, epoch: this.epoch, rebuilding: now - this.startedMs < this.opts.offlineAfterMs };
  }
}
