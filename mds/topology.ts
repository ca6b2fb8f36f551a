// Topology: pools, zones, servers, metaservers, copysets and partitions. Metaservers
// register (keeping the token they get) and heartbeat; copysets are created lazily on
// metaservers in distinct zones; partitions go to the least-loaded copysets.
import { randomUUID } from 'node:crypto';
import type { Logger } from '../common/log.js';
import { StatusCode, TierfsError } from '../common/status.js';
import type { RegisterMetaServerRequest__Output } from '../proto/gen/tierfs/heartbeat/RegisterMetaServerRequest.js';
import type { MetaServerHeartbeatRequest__Output } from '../proto/gen/tierfs/heartbeat/MetaServerHeartbeatRequest.js';
import type { CopysetConfigChange } from '../proto/gen/tierfs/heartbeat/CopysetConfigChange.js';
import type { MdsConfig } from './config.js';
import type { CopysetCaller } from './copyset-caller.js';
import type { PartitionPlacer } from './filesystems.js';
import { reserveIds } from './ids.js';
import { chunkPoolName, isChunkPool, keys, type CopysetRecord, type FsRecord, type MetaServerRecord, type PartitionRecord } from './records.js';
import { copysetKey, type MdsState } from './state.js';

export class Topology implements PartitionPlacer {
  private placing: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly state: MdsState,
    private readonly config: MdsConfig,
    private readonly caller: CopysetCaller,
    private readonly log: Logger,
    /** Whether a server is being added to a copyset by an operator (scheduler). */
    private readonly isJoining: (copysetKey: string, address: string) => boolean = () => false,
  ) {}

  async poolId(name: string): Promise<number> {
    const known = this.state.pools.get(name);
    if (known !== undefined) return known;
    const id = await reserveIds(this.state.kv, keys.counter('pool'), 1);
    if (!(await this.state.kv.cas(keys.pool(name), undefined, String(id)))) {
      const existing = Number(await this.state.kv.get(keys.pool(name)));
      this.state.pools.set(name, existing);
      return existing;
    }
    this.state.pools.set(name, id);
    return id;
  }

  async register(req: RegisterMetaServerRequest__Output): Promise<MetaServerRecord> {
    if (!req.address) throw new TierfsError(StatusCode.INVALID_ARGUMENT, 'metaserver address is missing');
    if (req.token) {
      const ms = [...this.state.metaservers.values()].find((m) => m.token === req.token);
      if (!ms) throw new TierfsError(StatusCode.PERMISSION_DENIED, `unknown metaserver token; remove the metaserver's data dir to register it as a new one`);
      if (ms.address !== req.address) {
        this.log.warn({ id: ms.id, from: ms.address, to: req.address }, 'metaserver changed its address');
        await this.state.saveMetaServer({ ...ms, address: req.address });
      }
      this.markAlive(ms.id);
      return this.state.metaservers.get(ms.id)!;
    }
    const clash = this.state.metaserverByAddress(req.address);
    if (clash) throw new TierfsError(StatusCode.EXISTS, `a metaserver at ${req.address} is already registered as id ${clash.id}; present its token`);
    const chunk = req.kind === 'chunkserver';
    const pool = chunk ? chunkPoolName(req.pool) : req.pool || 'default';
    await this.poolId(pool);
    const id = await reserveIds(this.state.kv, keys.counter('metaserver'), 1);
    const ms: MetaServerRecord = { v: 1, id, address: req.address, hostName: req.host_name || req.address.split(':')[0]!, zone: req.zone || 'default', pool, token: randomUUID() };
    if (chunk) ms.kind = 'chunkserver';
    await this.state.saveMetaServer(ms);
    this.markAlive(id);
    this.log.info({ id, address: ms.address, zone: ms.zone, host: ms.hostName, kind: ms.kind ?? 'metaserver' }, 'server registered');
    return ms;
  }

  private markAlive(id: number): void {
    const rt = this.state.metaserverRuntime.get(id);
    if (rt) {
      if (rt.state !== 'ONLINE') this.log.info({ id }, 'metaserver back online');
      rt.lastHeartbeatMs = Date.now();
      rt.state = 'ONLINE';
    } else {
      this.state.metaserverRuntime.set(id, { lastHeartbeatMs: Date.now(), state: 'ONLINE', diskUsedBytes: 0, diskCapacityBytes: 0 });
    }
  }

  /** Applies a heartbeat to the topology; returns REMOVE_COPYSET for copysets the server no longer belongs to. */
  async heartbeat(req: MetaServerHeartbeatRequest__Output): Promise<{ ms: MetaServerRecord; changes: CopysetConfigChange[] }> {
    const ms = this.state.metaservers.get(req.metaserver_id);
    if (!ms) throw new TierfsError(StatusCode.NOT_FOUND, `metaserver id ${req.metaserver_id} is not registered; register again`);
    if (ms.token !== req.token) throw new TierfsError(StatusCode.PERMISSION_DENIED, `wrong token for metaserver id ${ms.id}`);
    this.markAlive(ms.id);
    const rt = this.state.metaserverRuntime.get(ms.id)!;
    rt.diskUsedBytes = Number(req.disk_used_bytes);
    rt.diskCapacityBytes = Number(req.disk_capacity_bytes);
    const changes: CopysetConfigChange[] = [];
    for (const rep of req.copysets) {
      const key = copysetKey(rep.pool_id, rep.copyset_id);
      let rec = this.state.copysets.get(key);
      const epoch = Number(rep.epoch);
      if (!rec) {
        // Created on metaservers but not recorded (the MDS failed in between): adopt it.
        if (rep.peers.length === 0) continue;
        rec = { v: 1, poolId: rep.pool_id, copysetId: rep.copyset_id, peers: [...rep.peers], epoch };
        await this.state.saveCopyset(rec);
        this.log.info({ copyset: key, peers: rec.peers }, 'adopted copyset reported by a metaserver');
      } else if (epoch > rec.epoch && rep.peers.length > 0) {
        rec = { ...rec, peers: [...rep.peers], epoch };
        await this.state.saveCopyset(rec);
        this.log.info({ copyset: key, peers: rec.peers, epoch }, 'copyset configuration changed');
      } else if (epoch < rec.epoch && !rec.peers.includes(ms.address) && !this.isJoining(key, ms.address)
        && !(this.state.copysetRuntime.get(key)?.learners ?? []).includes(ms.address)) {
        // Removed from the copyset by a configuration change it missed: drop the stale replica.
        changes.push({ copyset_id: rep.copyset_id, pool_id: rep.pool_id, type: 'REMOVE_COPYSET', peer: ms.address, old_peer: '', epoch: rec.epoch });
        continue;
      }
      const term = Number(rep.term);
      const csrt = this.state.copysetRuntime.get(key);
      if (!csrt || term > csrt.term || (term === csrt.term && (rep.is_leader || !csrt.leader))) {
        this.state.copysetRuntime.set(key, {
          leader: rep.is_leader ? ms.address : rep.leader, term, learners: [...rep.learners], pendingChange: rep.pending_change,
          unreachable: rep.is_leader ? [...rep.unreachable_peers] : (csrt?.term === term ? csrt.unreachable : []),
          reportedTerms: csrt?.reportedTerms ?? new Map(),
        });
      }
      this.state.copysetRuntime.get(key)!.reportedTerms.set(ms.address, term);
      if (rep.is_leader) {
        for (const p of rep.partitions) {
          this.state.partitionRuntime.set(p.partition_id, { nextId: Number(p.next_id), readOnly: p.read_only, inodeCount: Number(p.inode_count), dentryCount: Number(p.dentry_count) });
        }
      }
    }
    return { ms, changes };
  }

  /** Whether the copyset belongs to a chunkservers' pool (it holds chunks, never partitions). */
  isChunkCopyset(cs: CopysetRecord): boolean {
    for (const [name, id] of this.state.pools) if (id === cs.poolId) return isChunkPool(name);
    return false;
  }

  onlineMetaservers(pool?: string): MetaServerRecord[] {
    return [...this.state.metaservers.values()].filter((m) => (!pool || m.pool === pool) && this.state.metaserverRuntime.get(m.id)?.state === 'ONLINE');
  }

  /**
   * Chooses `n` metaservers: distinct zones first, then distinct hosts, then the fewest
   * copysets. Returns fewer when there are not enough candidates.
   */
  choosePeers(candidates: MetaServerRecord[], n: number, taken: MetaServerRecord[] = []): MetaServerRecord[] {
    const chosen: MetaServerRecord[] = [];
    const pool = [...candidates];
    while (chosen.length < n && pool.length > 0) {
      const all = [...taken, ...chosen];
      const score = (m: MetaServerRecord): [number, number, number, number] => [
        all.some((c) => c.zone === m.zone) ? 1 : 0,
        all.some((c) => c.hostName === m.hostName) ? 1 : 0,
        this.state.copysetsOn(m.address).length,
        m.id,
      ];
      pool.sort((a, b) => {
        const sa = score(a);
        const sb = score(b);
        for (let i = 0; i < sa.length; i++) if (sa[i] !== sb[i]) return sa[i]! - sb[i]!;
        return 0;
      });
      chosen.push(pool.shift()!);
    }
    return chosen;
  }

  /** Creates copysets up to the configured target for the pool; false when too few metaservers are online. */
  async ensureCopysets(pool = 'default'): Promise<boolean> {
    const replicas = this.config.copysets.replicas;
    const online = this.onlineMetaservers(pool);
    const poolId = await this.poolId(pool);
    const existing = [...this.state.copysets.values()].filter((c) => c.poolId === poolId);
    if (online.length < replicas) return existing.length > 0;
    const target = this.config.copysets.total || Math.max(1, Math.floor((online.length * this.config.copysets.perServer) / replicas));
    for (let i = existing.length; i < target; i++) {
      const peers = this.choosePeers(online, replicas);
      const zones = new Set(peers.map((p) => p.zone));
      if (zones.size < peers.length) {
        this.log.warn({ zones: [...zones], replicas }, 'fewer zones than replicas: some copyset replicas share a zone (distinct servers instead)');
      }
      const copysetId = await reserveIds(this.state.kv, keys.counter('copyset'), 1);
      const addresses = peers.map((p) => p.address);
      const results = await Promise.allSettled(addresses.map((a) => this.caller.createCopyset(a, poolId, copysetId, addresses)));
      const failed = results.findIndex((r) => r.status === 'rejected');
      if (failed >= 0) {
        const reason = (results[failed] as PromiseRejectedResult).reason as Error;
        this.log.warn({ copysetId, peer: addresses[failed], err: reason.message }, 'copyset creation failed; undoing');
        await Promise.allSettled(addresses.map((a) => this.caller.deleteCopyset(a, poolId, copysetId)));
        return existing.length > 0 || i > existing.length;
      }
      await this.state.saveCopyset({ v: 1, poolId, copysetId, peers: addresses, epoch: 0 });
      this.log.info({ poolId, copysetId, peers: addresses }, 'copyset created');
    }
    return true;
  }

  /** Serializes placement so two requests never pick ranges or copysets from the same snapshot. */
  private serialPlacement<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.placing.then(fn, fn);
    this.placing = run.catch(() => undefined);
    return run;
  }

  async placeFs(fs: FsRecord): Promise<boolean> {
    return this.serialPlacement(async () => {
      if (!(await this.ensureCopysets())) return false;
      await this.resendUncreated(fs.fsId);
      const have = this.state.partitionsOf(fs.fsId).length;
      for (let i = have; i < fs.partitionsWanted; i++) await this.createPartition(fs.fsId);
      return true;
    });
  }

  async createPartitions(fsId: number, count: number): Promise<PartitionRecord[]> {
    return this.serialPlacement(async () => {
      if (!(await this.ensureCopysets())) {
        throw new TierfsError(StatusCode.UNAVAILABLE, `not enough metaservers online to create copysets (need ${this.config.copysets.replicas})`);
      }
      const out: PartitionRecord[] = [];
      for (let i = 0; i < count; i++) out.push(await this.createPartition(fsId));
      return out;
    });
  }

  private async resendUncreated(fsId: number): Promise<void> {
    for (const pt of this.state.partitionsOf(fsId)) if (!pt.created) await this.sendCreatePartition(pt);
  }

  /** The copyset with the fewest partitions among those with a quorum of online peers. */
  private pickCopyset(): CopysetRecord {
    const usable = [...this.state.copysets.values()].filter((c) => !this.isChunkCopyset(c) && c.peers.filter((p) => this.state.stateOf(p) !== 'OFFLINE').length * 2 > c.peers.length);
    if (usable.length === 0) throw new TierfsError(StatusCode.UNAVAILABLE, 'no copyset has a quorum of online metaservers');
    usable.sort((a, b) => this.state.partitionsOnCopyset(a.poolId, a.copysetId) - this.state.partitionsOnCopyset(b.poolId, b.copysetId) || a.copysetId - b.copysetId);
    return usable[0]!;
  }

  private async createPartition(fsId: number): Promise<PartitionRecord> {
    const cs = this.pickCopyset();
    const size = this.config.partitions.size;
    const partitionId = await reserveIds(this.state.kv, keys.counter('partition'), 1);
    const start = await reserveIds(this.state.kv, keys.inodeCursor(fsId), size);
    const pt: PartitionRecord = { v: 1, fsId, poolId: cs.poolId, copysetId: cs.copysetId, partitionId, start, end: start + size - 1, created: false };
    await this.state.savePartition(pt);
    await this.sendCreatePartition(pt);
    return this.state.partitions.get(partitionId)!;
  }

  /** CreatePartition through the copyset leader; the metaserver creates the root inode when start == 1. */
  private async sendCreatePartition(pt: PartitionRecord): Promise<void> {
    const cs = this.state.copysets.get(copysetKey(pt.poolId, pt.copysetId));
    if (!cs) throw new TierfsError(StatusCode.INTERNAL, `partition ${pt.partitionId} names unknown copyset ${pt.poolId}/${pt.copysetId}`);
    const hint = this.state.copysetRuntime.get(copysetKey(pt.poolId, pt.copysetId))?.leader ?? '';
    const info = { fs_id: pt.fsId, pool_id: pt.poolId, copyset_id: pt.copysetId, partition_id: pt.partitionId, start: pt.start, end: pt.end };
    const leader = await this.caller.createPartition(info, cs.peers, hint, this.config.partitions.createTimeoutMs);
    await this.state.savePartition({ ...pt, created: true });
    if (!this.state.partitionRuntime.has(pt.partitionId)) {
      this.state.partitionRuntime.set(pt.partitionId, { nextId: pt.start, readOnly: false, inodeCount: 0, dentryCount: 0 });
    }
    this.log.info({ fsId: pt.fsId, partitionId: pt.partitionId, start: pt.start, end: pt.end, leader }, 'partition created');
  }

  async dropPartitions(fsId: number): Promise<void> {
    for (const pt of this.state.partitionsOf(fsId)) {
      await this.state.kv.delete(keys.partition(fsId, pt.partitionId));
      this.state.partitions.delete(pt.partitionId);
      this.state.partitionRuntime.delete(pt.partitionId);
      const cs = this.state.copysets.get(copysetKey(pt.poolId, pt.copysetId));
      if (!cs) continue;
      const hint = this.state.copysetRuntime.get(copysetKey(pt.poolId, pt.copysetId))?.leader ?? '';
      // Best effort: a partition the metaserver keeps is unreachable once the fs is gone.
      void this.caller
        .callLeader('DeletePartition', { pool_id: pt.poolId, copyset_id: pt.copysetId, partition_id: pt.partitionId }, cs.peers, hint, 10_000)
        .catch((err: Error) => this.log.warn({ partitionId: pt.partitionId, err: err.message }, 'DeletePartition failed'));
    }
  }

  inodeCount(fsId: number): number | null {
    let total = 0;
    let seen = false;
    for (const pt of this.state.partitionsOf(fsId)) {
      const rt = this.state.partitionRuntime.get(pt.partitionId);
      if (rt && (rt.inodeCount > 0 || rt.nextId > pt.start)) {
        total += rt.inodeCount;
        seen = true;
      }
    }
    return seen ? total : null;
  }
}
