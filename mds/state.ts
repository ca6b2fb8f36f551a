// The leader's view of the cluster: durable records loaded from the store (written through
// on every change) plus runtime facts learned from heartbeats, which live only in memory
// and are rebuilt by the next heartbeats after a failover.
import type { MountReport__Output as MountReport } from '../proto/gen/tierfs/mds/MountReport.js';
import type { KvStore } from './kv.js';
import {
  keys, parseRecord,
  type CopysetRecord, type FsRecord, type MetaServerRecord, type PartitionRecord, type TrashRecord,
} from './records.js';

export type MetaServerState = 'ONLINE' | 'UNSTABLE' | 'OFFLINE';

export interface MetaServerRuntime {
  lastHeartbeatMs: number;
  state: MetaServerState;
  diskUsedBytes: number;
  diskCapacityBytes: number;
}

export interface CopysetRuntime {
  leader: string;
  term: number;
  learners: string[];
  pendingChange: string;
  /** Peers the leader last reported it cannot hear from. */
  unreachable: string[];
  /** The term each member's latest heartbeat showed for this copyset. */
  reportedTerms: Map<string, number>;
}

export interface PartitionRuntime {
  nextId: number;
  readOnly: boolean;
  inodeCount: number;
  dentryCount: number;
}

export const copysetKey = (poolId: number, copysetId: number): string => `${poolId}:${copysetId}`;

export class MdsState {
  readonly filesystems = new Map<string, FsRecord>();
  readonly metaservers = new Map<number, MetaServerRecord>();
  readonly pools = new Map<string, number>();
  readonly copysets = new Map<string, CopysetRecord>();
  readonly partitions = new Map<number, PartitionRecord>();
  readonly trash = new Map<number, TrashRecord>();

  readonly metaserverRuntime = new Map<number, MetaServerRuntime>();
  readonly copysetRuntime = new Map<string, CopysetRuntime>();
  readonly partitionRuntime = new Map<number, PartitionRuntime>();
  /** sessionId -> last refresh (ms). */
  readonly sessionSeen = new Map<string, number>();
  /** sessionId -> the mount's last report (backlog, rates, version); memory only, refreshed every few seconds. */
  readonly sessionReport = new Map<string, MountReport>();

  constructor(readonly kv: KvStore) {}

  /** Loads every durable record; runtime facts start fresh (servers get a full grace period). */
  async load(now = Date.now()): Promise<this> {
    for (const { value } of await this.kv.range(keys.fsPrefix)) {
      const fs = parseRecord<FsRecord>(value, 'filesystem');
      this.filesystems.set(fs.name, fs);
      for (const m of fs.mounts) this.sessionSeen.set(m.sessionId, now);
    }
    for (const { value } of await this.kv.range(keys.metaserverPrefix)) {
      const ms = parseRecord<MetaServerRecord>(value, 'metaserver');
      this.metaservers.set(ms.id, ms);
      this.metaserverRuntime.set(ms.id, { lastHeartbeatMs: now, state: 'ONLINE', diskUsedBytes: 0, diskCapacityBytes: 0 });
    }
    for (const { key, value } of await this.kv.range(keys.poolPrefix)) this.pools.set(key.slice(keys.poolPrefix.length), Number(value));
    for (const { value } of await this.kv.range(keys.copysetPrefix)) {
      const cs = parseRecord<CopysetRecord>(value, 'copyset');
      this.copysets.set(copysetKey(cs.poolId, cs.copysetId), cs);
    }
    for (const { value } of await this.kv.range(keys.partitionPrefix())) {
      const pt = parseRecord<PartitionRecord>(value, 'partition');
      this.partitions.set(pt.partitionId, pt);
    }
    for (const { value } of await this.kv.range(keys.trashPrefix)) {
      const t = parseRecord<TrashRecord>(value, 'trash');
      this.trash.set(t.fsId, t);
    }
    return this;
  }

  fsById(fsId: number): FsRecord | undefined {
    for (const fs of this.filesystems.values()) if (fs.fsId === fsId) return fs;
    return undefined;
  }

  fsBySession(sessionId: string): FsRecord | undefined {
    for (const fs of this.filesystems.values()) if (fs.mounts.some((m) => m.sessionId === sessionId)) return fs;
    return undefined;
  }

  metaserverByAddress(address: string): MetaServerRecord | undefined {
    for (const ms of this.metaservers.values()) if (ms.address === address) return ms;
    return undefined;
  }

  stateOf(address: string): MetaServerState {
    const ms = this.metaserverByAddress(address);
    return ms ? (this.metaserverRuntime.get(ms.id)?.state ?? 'OFFLINE') : 'OFFLINE';
  }

  /**
   * Whether `address` may be the target of an operator (new peer, new leader): ONLINE is not
   * enough, since a dead server stays ONLINE until `health.unstableAfterMs`. It must also have
   * heartbeated within `freshMs` and no copyset leader may report it unreachable.
   */
  isHealthyTarget(address: string, freshMs: number, now = Date.now()): boolean {
    const ms = this.metaserverByAddress(address);
    const rt = ms ? this.metaserverRuntime.get(ms.id) : undefined;
    if (!rt || rt.state !== 'ONLINE' || now - rt.lastHeartbeatMs > freshMs) return false;
    for (const cs of this.copysetRuntime.values()) {
      if (cs.unreachable.includes(address)) return false;
      // It has not heartbeated since its copyset elected a new leader: a leader killed
      // (or cut off) is exactly this, for as long as it stays dead.
      const seen = cs.reportedTerms.get(address);
      if (seen !== undefined && seen < cs.term) return false;
    }
    return true;
  }

  partitionsOf(fsId: number): PartitionRecord[] {
    return [...this.partitions.values()].filter((p) => p.fsId === fsId).sort((a, b) => a.start - b.start);
  }

  partitionsOnCopyset(poolId: number, copysetId: number): number {
    let n = 0;
    for (const p of this.partitions.values()) if (p.poolId === poolId && p.copysetId === copysetId) n++;
    return n;
  }

  copysetsOn(address: string): CopysetRecord[] {
    return [...this.copysets.values()].filter((c) => c.peers.includes(address));
  }

  async saveFs(fs: FsRecord): Promise<void> {
    await this.kv.put(keys.fs(fs.name), JSON.stringify(fs));
    this.filesystems.set(fs.name, fs);
  }

  async saveMetaServer(ms: MetaServerRecord): Promise<void> {
    await this.kv.put(keys.metaserver(ms.id), JSON.stringify(ms));
    this.metaservers.set(ms.id, ms);
  }

  async saveCopyset(cs: CopysetRecord): Promise<void> {
    await this.kv.put(keys.copyset(cs.poolId, cs.copysetId), JSON.stringify(cs));
    this.copysets.set(copysetKey(cs.poolId, cs.copysetId), cs);
  }

  async savePartition(pt: PartitionRecord): Promise<void> {
    await this.kv.put(keys.partition(pt.fsId, pt.partitionId), JSON.stringify(pt));
    this.partitions.set(pt.partitionId, pt);
  }
}
