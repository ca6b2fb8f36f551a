// Filesystems: create (validated, one distinct error per mistake), delete (refused while
// mounted; objects removed in the background), info, list, mount/umount with sessions
// that expire when their mount stops refreshing, and usage.
import { randomUUID } from 'node:crypto';
import type { Logger } from '../common/log.js';
import { StatusCode, TierfsError } from '../common/status.js';
import type { CreateFsRequest__Output } from '../proto/gen/tierfs/mds/CreateFsRequest.js';
import type { FsInfo } from '../proto/gen/tierfs/mds/FsInfo.js';
import type { MountReport__Output as MountReport } from '../proto/gen/tierfs/mds/MountReport.js';
import type { MdsConfig } from './config.js';
import { reserveIds } from './ids.js';
import { keys, type FsRecord, type MountRecord, type S3Record } from './records.js';
import type { MdsState } from './state.js';
import { checkBucket, deleteFsObjects } from './s3ops.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
export const DEFAULT_BLOCK_SIZE = 4 * MiB;
export const DEFAULT_CHUNK_SIZE = 64 * MiB;
const NAME_RE = /^[a-zA-Z0-9_-]+$/;

/** What the filesystem manager needs from placement (topology). */
export interface PartitionPlacer {
  /** Places the partitions a filesystem still lacks; false when too few metaservers are online. */
  placeFs(fs: FsRecord): Promise<boolean>;
  dropPartitions(fsId: number): Promise<void>;
  inodeCount(fsId: number): number | null;
}

const bad = (message: string, code: StatusCode = StatusCode.INVALID_ARGUMENT) => new TierfsError(code, message);

/** Checks a CreateFs request without touching the store; returns the normalized record fields. */
export function validateCreateFs(req: CreateFsRequest__Output): { s3: S3Record; blockSize: number; chunkSize: number; trashDays: number } {
  const name = req.name ?? '';
  if (name.length === 0) throw bad('filesystem name is empty');
  if (name.length > 63) throw bad(`filesystem name "${name.slice(0, 20)}..." is ${name.length} characters; at most 63`, StatusCode.NAME_TOO_LONG);
  if (!NAME_RE.test(name)) throw bad(`filesystem name "${name}" may contain only letters, digits, "_" and "-"`);
  const fsType = req.fs_type || 's3';
  if (fsType !== 's3') throw bad(`fs_type "${fsType}" is not supported; use "s3"`, StatusCode.NOT_SUPPORTED);
  const s3 = req.s3;
  if (!s3) throw bad('s3 settings are missing (endpoint, bucket, access key, secret key)');
  if (!s3.endpoint) throw bad('s3 endpoint is missing');
  let url: URL;
  try {
    url = new URL(s3.endpoint);
  } catch {
    throw bad(`s3 endpoint "${s3.endpoint}" is not a URL (expected e.g. http://127.0.0.1:9000)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw bad(`s3 endpoint "${s3.endpoint}" must start with http:// or https://`);
  if (!s3.bucket) throw bad('s3 bucket is missing');
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(s3.bucket)) throw bad(`s3 bucket name "${s3.bucket}" is not a valid bucket name (3-63 of a-z 0-9 . -)`);
  if (!s3.access_key) throw bad('s3 access key is missing');
  if (!s3.secret_key) throw bad('s3 secret key is missing');
  const blockSize = Number(req.block_size) || DEFAULT_BLOCK_SIZE;
  if (blockSize < 64 * KiB || blockSize > 64 * MiB) throw bad(`block size ${blockSize} is out of range 64 KiB..64 MiB`);
  if ((blockSize & (blockSize - 1)) !== 0) throw bad(`block size ${blockSize} is not a power of two`);
  const chunkSize = Number(req.chunk_size) || Math.max(DEFAULT_CHUNK_SIZE, blockSize);
  if (chunkSize > GiB) throw bad(`chunk size ${chunkSize} exceeds 1 GiB`);
  if (chunkSize % blockSize !== 0) throw bad(`chunk size ${chunkSize} is not a multiple of the block size ${blockSize}`);
  const trashDays = Number(req.trash_days) || 0;
  if (!(trashDays >= 0 && trashDays <= 3650)) throw bad(`trash days ${req.trash_days} out of range 0..3650`);
  return {
    trashDays,
    s3: { endpoint: s3.endpoint, bucket: s3.bucket, accessKey: s3.access_key, secretKey: s3.secret_key, region: s3.region || 'us-east-1', keyPrefix: s3.key_prefix ?? '' },
    blockSize,
    chunkSize,
  };
}

export class FilesystemManager {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly state: MdsState,
    private readonly config: MdsConfig,
    private readonly placer: PartitionPlacer,
    private readonly log: Logger,
  ) {}

  /** Runs mutations of filesystem records one at a time (read-check-write without races). */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  get(nameOrId: string | number): FsRecord {
    const fs = typeof nameOrId === 'number' ? this.state.fsById(nameOrId) : this.state.filesystems.get(nameOrId);
    if (!fs) throw new TierfsError(StatusCode.NOT_FOUND, `filesystem ${typeof nameOrId === 'number' ? `id ${nameOrId}` : `"${nameOrId}"`} does not exist`);
    return fs;
  }

  async create(req: CreateFsRequest__Output): Promise<FsRecord> {
    const v = validateCreateFs(req);
    if (this.state.filesystems.has(req.name)) throw new TierfsError(StatusCode.EXISTS, `filesystem "${req.name}" already exists`);
    if (this.config.s3.headBucket) await checkBucket(v.s3, this.config.s3.timeoutMs);
    const fs = await this.exclusive(async () => {
      if (this.state.filesystems.has(req.name)) throw new TierfsError(StatusCode.EXISTS, `filesystem "${req.name}" already exists`);
      const fsId = await reserveIds(this.state.kv, keys.counter('fs'), 1);
      const rec: FsRecord = {
        v: 1, fsId, name: req.name, fsType: 's3', s3: v.s3, blockSize: v.blockSize, chunkSize: v.chunkSize,
        capacity: Number(req.capacity) || 0, status: 'NEW', partitionsWanted: req.partition_count || this.config.partitions.perFs,
        createdMs: Date.now(), usedBytes: 0, inodeDelta: 0, mounts: [], trashDays: v.trashDays,
      };
      await this.state.saveFs(rec);
      this.log.info({ fs: rec.name, fsId }, 'filesystem created');
      return rec;
    });
    // Placement waits for copysets to elect leaders; without enough metaservers the fs stays
    // NEW and the placement loop finishes it when they come online.
    await this.place(fs).catch((err: Error) => this.log.warn({ fs: fs.name, err: err.message }, 'partition placement deferred'));
    return this.state.filesystems.get(fs.name) ?? fs;
  }

  /** Places missing partitions of a NEW filesystem; marks it INITED when all are in place. */
  async place(fs: FsRecord): Promise<void> {
    if (fs.status !== 'NEW') return;
    if (!(await this.placer.placeFs(fs))) return;
    await this.exclusive(async () => {
      const cur = this.state.filesystems.get(fs.name);
      if (cur && cur.fsId === fs.fsId && cur.status === 'NEW') await this.state.saveFs({ ...cur, status: 'INITED' });
    });
  }

  async delete(name: string): Promise<void> {
    await this.exclusive(async () => {
      const fs = this.get(name);
      if (fs.mounts.length > 0) {
        const m = fs.mounts[0]!;
        throw new TierfsError(StatusCode.BUSY, `filesystem "${name}" is mounted (${fs.mounts.length} mount(s), e.g. ${m.host}:${m.path} pid ${m.pid}); umount it first`);
      }
      // Trash first: if we crash after it, the objects are still cleaned up.
      await this.state.kv.put(keys.trash(fs.fsId), JSON.stringify({ v: 1, fsId: fs.fsId, name: fs.name, s3: fs.s3, deletedMs: Date.now() }));
      this.state.trash.set(fs.fsId, { v: 1, fsId: fs.fsId, name: fs.name, s3: fs.s3, deletedMs: Date.now() });
      await this.placer.dropPartitions(fs.fsId);
      await this.state.kv.delete(keys.inodeCursor(fs.fsId));
      await this.state.kv.delete(keys.fs(fs.name));
      this.state.filesystems.delete(fs.name);
      this.log.info({ fs: name, fsId: fs.fsId }, 'filesystem deleted; its objects are being removed');
    });
  }

  /** One pass over deleted filesystems: remove their objects, then forget them. */
  async collectTrash(): Promise<void> {
    for (const t of [...this.state.trash.values()]) {
      try {
        if (await deleteFsObjects(t.s3, t.fsId, this.config.s3.timeoutMs)) {
          await this.state.kv.delete(keys.trash(t.fsId));
          this.state.trash.delete(t.fsId);
          this.log.info({ fsId: t.fsId, fs: t.name }, 'objects of deleted filesystem removed');
        }
      } catch (err) {
        this.log.warn({ fsId: t.fsId, err: (err as Error).message }, 'object removal failed; will retry');
      }
    }
  }

  async mount(name: string, mount: { host: string; path: string; pid: number }): Promise<{ fs: FsRecord; sessionId: string }> {
    return this.exclusive(async () => {
      const fs = this.get(name);
      if (!mount.host || !mount.path) throw bad('mount point needs a host and a path');
      const rec: MountRecord = { host: mount.host, path: mount.path, pid: mount.pid, sessionId: randomUUID() };
      const next = { ...fs, mounts: [...fs.mounts, rec] };
      await this.state.saveFs(next);
      this.state.sessionSeen.set(rec.sessionId, Date.now());
      this.log.info({ fs: name, host: rec.host, path: rec.path, session: rec.sessionId }, 'mounted');
      return { fs: next, sessionId: rec.sessionId };
    });
  }

  async umount(name: string, sessionId: string): Promise<void> {
    await this.exclusive(async () => {
      const fs = this.get(name);
      if (!fs.mounts.some((m) => m.sessionId === sessionId)) throw new TierfsError(StatusCode.NOT_FOUND, `filesystem "${name}" has no mount session ${sessionId}`);
      await this.state.saveFs({ ...fs, mounts: fs.mounts.filter((m) => m.sessionId !== sessionId) });
      this.state.sessionSeen.delete(sessionId);
      this.state.sessionReport.delete(sessionId);
    });
  }

  async refresh(sessionId: string, usedBytesDelta: number, freedBytes: number, inodeDelta: number, report?: MountReport | null): Promise<void> {
    await this.exclusive(async () => {
      const fs = this.state.fsBySession(sessionId);
      if (!fs) throw new TierfsError(StatusCode.NOT_FOUND, `mount session ${sessionId} is unknown or expired; mount again`);
      this.state.sessionSeen.set(sessionId, Date.now());
      if (report) this.state.sessionReport.set(sessionId, report);
      if (usedBytesDelta || freedBytes || inodeDelta) {
        await this.state.saveFs({ ...fs, usedBytes: Math.max(0, fs.usedBytes + usedBytesDelta - freedBytes), inodeDelta: fs.inodeDelta + inodeDelta });
      }
    });
  }

  /** Drops mounts whose session has not been refreshed within the TTL. */
  async expireSessions(now = Date.now()): Promise<void> {
    const ttl = this.config.sessions.ttlMs;
    for (const fs of [...this.state.filesystems.values()]) {
      const stale = fs.mounts.filter((m) => now - (this.state.sessionSeen.get(m.sessionId) ?? 0) > ttl);
      if (stale.length === 0) continue;
      await this.exclusive(async () => {
        const cur = this.state.filesystems.get(fs.name);
        if (!cur) return;
        const dead = new Set(stale.map((m) => m.sessionId));
        await this.state.saveFs({ ...cur, mounts: cur.mounts.filter((m) => !dead.has(m.sessionId)) });
        for (const m of stale) {
          this.state.sessionSeen.delete(m.sessionId);
          this.state.sessionReport.delete(m.sessionId);
          this.log.warn({ fs: fs.name, host: m.host, path: m.path, session: m.sessionId }, 'mount session expired');
        }
      });
    }
  }

  toInfo(fs: FsRecord): FsInfo {
    return {
      fs_id: fs.fsId, name: fs.name, fs_type: fs.fsType,
      s3: { endpoint: fs.s3.endpoint, bucket: fs.s3.bucket, access_key: fs.s3.accessKey, secret_key: fs.s3.secretKey, region: fs.s3.region, key_prefix: fs.s3.keyPrefix },
      block_size: fs.blockSize, chunk_size: fs.chunkSize, capacity: fs.capacity, root_ino: 1, status: fs.status,
      mounts: fs.mounts.map((m) => {
        const report = this.state.sessionReport.get(m.sessionId);
        return { host: m.host, path: m.path, pid: m.pid, session_id: m.sessionId, last_seen_ms: this.state.sessionSeen.get(m.sessionId) ?? 0, ...(report ? { report } : {}) };
      }),
      used_bytes: fs.usedBytes,
      inode_count: this.placer.inodeCount(fs.fsId) ?? Math.max(0, fs.inodeDelta),
      created_ms: fs.createdMs,
      trash_days: fs.trashDays ?? 0,
    };
  }
}
