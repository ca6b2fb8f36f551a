// The nameserver of block volumes (Curve's NameServer + its segment allocation): create with
// a size, extend, delete into a recycle bin kept `volumes.recycleRetentionMs`, recover, list,
// info; attach sessions (one read-write attach at a time); space allocated lazily in
// segments of chunks spread round robin over the copysets of the volume's chunkserver pool.
// Every record lives in the MDS store (etcd or embedded), so a new leader serves the same
// volumes and segments after a failover.
import { randomUUID } from 'node:crypto';
import type { Logger } from '../common/log.js';
import { StatusCode, TierfsError } from '../common/status.js';
import type { VolumeInfo } from '../proto/gen/tierfs/mds/VolumeInfo.js';
import type { MdsConfig } from './config.js';
import type { BundledIdAllocator } from './ids.js';
import { reserveIds } from './ids.js';
import { chunkPoolName, keys, parseRecord, type CopysetRecord } from './records.js';
import { copysetKey, type MdsState } from './state.js';
import type { Topology } from './topology.js';

export interface VolumeOpenRecord {
  sessionId: string;
  host: string;
  pid: number;
  readOnly: boolean;
  sinceMs: number;
}

export interface VolumeRecord {
  v: 1;
  id: number;
  name: string;
  size: number;
  chunkSize: number;
  segmentSize: number;
  /** The chunkservers' pool its chunks live in ("chunk:<pool>"). */
  pool: string;
  status: 'ACTIVE' | 'DELETED';
  createdMs: number;
  deletedMs: number;
  opens: VolumeOpenRecord[];
}

export interface ChunkLocationRecord {
  chunkId: number;
  poolId: number;
  copysetId: number;
}

export interface SegmentRecord {
  v: 1;
  volumeId: number;
  index: number;
  chunks: ChunkLocationRecord[];
}

/** Deletes chunks on their copysets (the recycle bin's purge). */
export interface ChunkDeleter {
  deleteChunk(loc: ChunkLocationRecord, peers: string[], leaderHint: string): Promise<void>;
}

const NAME_RE = /^[a-zA-Z0-9_-]{1,63}$/;
const MAX_SIZE = 2 ** 46; // 64 TiB: chunk ids and offsets stay exact
const bad = (m: string, code: StatusCode = StatusCode.INVALID_ARGUMENT) => new TierfsError(code, m);

export class VolumeManager {
  readonly volumes = new Map<string, VolumeRecord>();
  private readonly segments = new Map<number, Map<number, SegmentRecord>>();
  /** sessionId -> last refresh (ms); rebuilt with a full grace period after a failover. */
  private readonly seen = new Map<string, number>();
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(
    private readonly state: MdsState,
    private readonly config: MdsConfig,
    private readonly topology: Topology,
    private readonly chunkIds: BundledIdAllocator,
    private readonly deleter: ChunkDeleter,
    private readonly log: Logger,
  ) {}

  async load(now = Date.now()): Promise<this> {
    for (const { value } of await this.state.kv.range(keys.volumePrefix)) {
      const vol = parseRecord<VolumeRecord>(value, 'volume');
      this.volumes.set(vol.name, vol);
      for (const o of vol.opens) this.seen.set(o.sessionId, now);
      const segs = new Map<number, SegmentRecord>();
      for (const { value: sv } of await this.state.kv.range(keys.segmentPrefix(vol.id))) {
        const seg = parseRecord<SegmentRecord>(sv, 'segment');
        segs.set(seg.index, seg);
      }
      this.segments.set(vol.id, segs);
    }
    return this;
  }

  /** Runs `fn` alone for `key` (read-check-write of one volume without races). */
  private exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.locks.get(key) ?? Promise.resolve()).then(fn, fn);
    const settled = run.catch(() => undefined);
    this.locks.set(key, settled);
    void settled.then(() => {
      if (this.locks.get(key) === settled) this.locks.delete(key);
    });
    return run;
  }

  private async save(vol: VolumeRecord): Promise<VolumeRecord> {
    await this.state.kv.put(keys.volume(vol.name), JSON.stringify(vol));
    this.volumes.set(vol.name, vol);
    return vol;
  }

  private checkSize(size: number): void {
    if (!Number.isSafeInteger(size) || size <= 0) throw bad(`size ${size} must be a positive number of bytes`);
    if (size % 4096 !== 0) throw bad(`size ${size} is not a multiple of 4 KiB`);
    if (size > MAX_SIZE) throw bad(`size ${size} is more than 64 TiB`);
  }

  /** The volume, also from the recycle bin. */
  find(name: string): VolumeRecord {
    const vol = this.volumes.get(name);
    if (!vol) throw bad(`volume "${name}" does not exist`, StatusCode.NOT_FOUND);
    return vol;
  }

  active(name: string): VolumeRecord {
    const vol = this.find(name);
    if (vol.status !== 'ACTIVE') throw bad(`volume "${name}" is in the recycle bin (tierfs volume recover ${name})`, StatusCode.NOT_FOUND);
    return vol;
  }

  byId(id: number): VolumeRecord {
    for (const v of this.volumes.values()) if (v.id === id && v.status === 'ACTIVE') return v;
    throw bad(`volume id ${id} does not exist`, StatusCode.NOT_FOUND);
  }

  create(name: string, size: number, pool: string): Promise<VolumeRecord> {
    return this.exclusive(`name:${name}`, async () => {
      if (!NAME_RE.test(name)) throw bad(`volume name "${name}" must be 1-63 of letters, digits, "_" and "-"`);
      this.checkSize(size);
      const existing = this.volumes.get(name);
      if (existing) {
        throw bad(existing.status === 'ACTIVE' ? `volume "${name}" already exists` : `volume "${name}" is in the recycle bin: recover it, or wait until it is purged`, StatusCode.EXISTS);
      }
      const id = await reserveIds(this.state.kv, keys.counter('volume'), 1);
      const { chunkSize, segmentSize } = this.config.volumes;
      const vol: VolumeRecord = { v: 1, id, name, size, chunkSize, segmentSize, pool: chunkPoolName(pool), status: 'ACTIVE', createdMs: Date.now(), deletedMs: 0, opens: [] };
      this.segments.set(id, new Map());
      this.log.info({ volume: name, id, size }, 'volume created');
      return this.save(vol);
    });
  }

  extend(name: string, size: number): Promise<VolumeRecord> {
    return this.exclusive(`name:${name}`, async () => {
      const vol = this.active(name);
      this.checkSize(size);
      if (size < vol.size) throw bad(`volume "${name}" is ${vol.size} bytes; shrinking to ${size} is not supported`);
      return this.save({ ...vol, size });
    });
  }

  delete(name: string): Promise<VolumeRecord> {
    return this.exclusive(`name:${name}`, async () => {
      const vol = this.active(name);
      if (vol.opens.length > 0) {
        const o = vol.opens[0]!;
        throw bad(`volume "${name}" is attached on ${o.host} (pid ${o.pid}); detach it first`, StatusCode.BUSY);
      }
      this.log.info({ volume: name }, 'volume moved to the recycle bin');
      return this.save({ ...vol, status: 'DELETED', deletedMs: Date.now() });
    });
  }

  recover(name: string): Promise<VolumeRecord> {
    return this.exclusive(`name:${name}`, async () => {
      const vol = this.find(name);
      if (vol.status === 'ACTIVE') throw bad(`volume "${name}" is not in the recycle bin`, StatusCode.INVALID_ARGUMENT);
      return this.save({ ...vol, status: 'ACTIVE', deletedMs: 0 });
    });
  }

  open(name: string, host: string, pid: number, readOnly: boolean): Promise<{ vol: VolumeRecord; sessionId: string }> {
    return this.exclusive(`name:${name}`, async () => {
      const vol = this.active(name);
      const writer = vol.opens.find((o) => !o.readOnly);
      if (!readOnly && writer) {
        throw bad(`volume "${name}" is already attached read-write on ${writer.host} (pid ${writer.pid}); detach it there first`, StatusCode.BUSY);
      }
      const sessionId = randomUUID();
      this.seen.set(sessionId, Date.now());
      const saved = await this.save({ ...vol, opens: [...vol.opens, { sessionId, host, pid, readOnly, sinceMs: Date.now() }] });
      return { vol: saved, sessionId };
    });
  }

  async refresh(name: string, sessionId: string): Promise<VolumeRecord> {
    const vol = this.active(name);
    if (!vol.opens.some((o) => o.sessionId === sessionId)) throw bad(`session ${sessionId} of volume "${name}" expired; attach again`, StatusCode.NOT_FOUND);
    this.seen.set(sessionId, Date.now());
    return vol;
  }

  close(name: string, sessionId: string): Promise<VolumeRecord> {
    return this.exclusive(`name:${name}`, async () => {
      const vol = this.find(name);
      this.seen.delete(sessionId);
      return this.save({ ...vol, opens: vol.opens.filter((o) => o.sessionId !== sessionId) });
    });
  }

  /** The segment, allocating it when asked (first write); null when never allocated. */
  getSegment(volumeId: number, index: number, allocate: boolean): Promise<SegmentRecord | null> {
    const vol = this.byId(volumeId);
    if (index * vol.segmentSize >= vol.size) throw bad(`segment ${index} is beyond the end of volume "${vol.name}" (${vol.size} bytes)`);
    const known = this.segments.get(volumeId)?.get(index);
    if (known || !allocate) return Promise.resolve(known ?? null);
    return this.exclusive(`segments:${volumeId}`, async () => {
      const again = this.segments.get(volumeId)?.get(index);
      if (again) return again;
      const seg = await this.allocate(vol, index);
      if (!this.segments.has(volumeId)) this.segments.set(volumeId, new Map());
      this.segments.get(volumeId)!.set(index, seg);
      return seg;
    });
  }

  private async allocate(vol: VolumeRecord, index: number): Promise<SegmentRecord> {
    const copysets = await this.usableCopysets(vol.pool);
    const n = vol.segmentSize / vol.chunkSize;
    const start = await this.chunkIds.allocate(n);
    // Round robin from a start that moves with the volume and the segment, so consecutive
    // chunks (and the first chunks of different volumes) land on different copysets.
    const first = (vol.id + index) % copysets.length;
    const chunks = Array.from({ length: n }, (_, i) => {
      const cs = copysets[(first + i) % copysets.length]!;
      return { chunkId: start + i, poolId: cs.poolId, copysetId: cs.copysetId };
    });
    const seg: SegmentRecord = { v: 1, volumeId: vol.id, index, chunks };
    const key = keys.segment(vol.id, index);
    if (!(await this.state.kv.cas(key, undefined, JSON.stringify(seg)))) {
      return parseRecord<SegmentRecord>((await this.state.kv.get(key))!, 'segment');
    }
    this.log.info({ volume: vol.name, segment: index, chunks: n, copysets: copysets.length }, 'segment allocated');
    return seg;
  }

  /** Copysets of the pool with a quorum online, creating them first when the pool has none. */
  private async usableCopysets(pool: string): Promise<CopysetRecord[]> {
    await this.exclusive(`pool:${pool}`, () => this.topology.ensureCopysets(pool));
    const poolId = await this.topology.poolId(pool);
    const usable = [...this.state.copysets.values()]
      .filter((c) => c.poolId === poolId && c.peers.filter((p) => this.state.stateOf(p) !== 'OFFLINE').length * 2 > c.peers.length)
      .sort((a, b) => a.copysetId - b.copysetId);
    if (usable.length === 0) {
      throw bad(`no chunk copyset of pool ${pool} has a quorum online (need ${this.config.copysets.replicas} chunkservers)`, StatusCode.UNAVAILABLE);
    }
    return usable;
  }

  segmentsOf(volumeId: number): SegmentRecord[] {
    return [...(this.segments.get(volumeId)?.values() ?? [])].sort((a, b) => a.index - b.index);
  }

  /** Periodic work: chunk copysets for pools with chunkservers, expired attach sessions, the recycle bin. */
  async tick(now = Date.now()): Promise<void> {
    const chunkPools = new Set(this.topology.onlineMetaservers().filter((m) => m.kind === 'chunkserver').map((m) => m.pool));
    for (const pool of chunkPools) await this.exclusive(`pool:${pool}`, () => this.topology.ensureCopysets(pool));
    const ttl = this.config.sessions.ttlMs;
    for (const vol of [...this.volumes.values()]) {
      const expired = vol.opens.filter((o) => now - (this.seen.get(o.sessionId) ?? now) > ttl);
      if (expired.length > 0) {
        this.log.warn({ volume: vol.name, sessions: expired.map((o) => `${o.host}:${o.pid}`) }, 'attach sessions expired');
        await this.exclusive(`name:${vol.name}`, async () => {
          const cur = this.find(vol.name);
          await this.save({ ...cur, opens: cur.opens.filter((o) => !expired.some((e) => e.sessionId === o.sessionId)) });
        });
      }
      if (vol.status === 'DELETED' && now >= vol.deletedMs + this.config.volumes.recycleRetentionMs) await this.purge(vol);
    }
  }

  /** Deletes the chunks of a volume whose time in the recycle bin is over, then its records. */
  private purge(vol: VolumeRecord): Promise<void> {
    return this.exclusive(`name:${vol.name}`, async () => {
      for (const seg of this.segmentsOf(vol.id)) {
        await Promise.all(seg.chunks.map((c) => {
          const key = copysetKey(c.poolId, c.copysetId);
          const peers = this.state.copysets.get(key)?.peers ?? [];
          return this.deleter.deleteChunk(c, peers, this.state.copysetRuntime.get(key)?.leader ?? '');
        }));
        await this.state.kv.delete(keys.segment(vol.id, seg.index));
        this.segments.get(vol.id)?.delete(seg.index);
      }
      await this.state.kv.delete(keys.volume(vol.name));
      this.volumes.delete(vol.name);
      this.segments.delete(vol.id);
      this.log.info({ volume: vol.name, id: vol.id }, 'volume purged from the recycle bin');
    });
  }

  toInfo(vol: VolumeRecord): VolumeInfo {
    const segs = this.segmentsOf(vol.id);
    const copysets = new Set<string>();
    for (const s of segs) for (const c of s.chunks) copysets.add(`${c.poolId}.${c.copysetId}`);
    return {
      id: vol.id, name: vol.name, size: vol.size, chunk_size: vol.chunkSize, segment_size: vol.segmentSize, status: vol.status,
      created_ms: vol.createdMs, deleted_ms: vol.deletedMs,
      purge_at_ms: vol.status === 'DELETED' ? vol.deletedMs + this.config.volumes.recycleRetentionMs : 0,
      allocated_segments: segs.length, copysets: [...copysets].sort(), pool: vol.pool,
      opens: vol.opens.map((o) => ({ session_id: o.sessionId, host: o.host, pid: o.pid, read_only: o.readOnly, since_ms: o.sinceMs })),
    };
  }
}
