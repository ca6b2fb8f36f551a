// Records the MDS keeps in its store (JSON values) and the keys they live under.
// Keys are typed by their first segment; values carry a version for later migrations.

export interface S3Record {
  endpoint: string;
  bucket: string;
  accessKey: string;
  secretKey: string;
  region: string;
  keyPrefix: string;
}

export interface MountRecord {
  host: string;
  path: string;
  pid: number;
  sessionId: string;
}

export interface FsRecord {
  v: 1;
  fsId: number;
  name: string;
  fsType: 's3';
  s3: S3Record;
  blockSize: number;
  chunkSize: number;
  capacity: number;
  /** NEW until its partitions are placed, then INITED. */
  status: 'NEW' | 'INITED';
  partitionsWanted: number;
  createdMs: number;
  usedBytes: number;
  /** Inode count from mounts' deltas; partition reports override it when present. */
  inodeDelta: number;
  mounts: MountRecord[];
  /** Days a deleted file stays in the recycle bin (/.trash); absent or 0 = off. */
  trashDays?: number;
}

export interface MetaServerRecord {
  v: 1;
  id: number;
  address: string;
  hostName: string;
  zone: string;
  pool: string;
  token: string;
  /** Chunkservers register through the same RPCs; their pool is "chunk:<pool>". Absent = metaserver. */
  kind?: 'chunkserver';
}

export interface CopysetRecord {
  v: 1;
  poolId: number;
  copysetId: number;
  peers: string[];
  epoch: number;
}

export interface PartitionRecord {
  v: 1;
  fsId: number;
  poolId: number;
  copysetId: number;
  partitionId: number;
  start: number;
  end: number;
  /**
   * False until the copyset confirmed CreatePartition. The record is written first so a
   * crash in between cannot lose the range (the partition with start 1 carries the root
   * inode, which the metaserver creates with the partition); placement resends it.
   */
  created: boolean;
}

/** A deleted filesystem whose objects are still being removed from S3. */
export interface TrashRecord {
  v: 1;
  fsId: number;
  name: string;
  s3: S3Record;
  deletedMs: number;
}

export const keys = {
  fs: (name: string) => `fs/${name}`,
  fsPrefix: 'fs/',
  counter: (name: 'fs' | 'partition' | 'metaserver' | 'copyset' | 'chunk' | 'pool' | 'volume') => `ids/${name}`,
  inodeCursor: (fsId: number) => `ids/inode/${fsId}`,
  metaserver: (id: number) => `ms/${String(id).padStart(8, '0')}`,
  metaserverPrefix: 'ms/',
  pool: (name: string) => `pool/${name}`,
  poolPrefix: 'pool/',
  copyset: (poolId: number, copysetId: number) => `cs/${String(poolId).padStart(6, '0')}/${String(copysetId).padStart(8, '0')}`,
  copysetPrefix: 'cs/',
  partition: (fsId: number, partitionId: number) => `pt/${String(fsId).padStart(8, '0')}/${String(partitionId).padStart(10, '0')}`,
  partitionPrefix: (fsId?: number) => (fsId === undefined ? 'pt/' : `pt/${String(fsId).padStart(8, '0')}/`),
  trash: (fsId: number) => `trash/${String(fsId).padStart(8, '0')}`,
  trashPrefix: 'trash/',
  volume: (name: string) => `vol/${name}`,
  volumePrefix: 'vol/',
  segment: (volumeId: number, index: number) => `seg/${String(volumeId).padStart(8, '0')}/${String(index).padStart(8, '0')}`,
  segmentPrefix: (volumeId: number) => `seg/${String(volumeId).padStart(8, '0')}/`,
};

/** The pool name under which chunkservers of `pool` and their copysets are kept. */
export const chunkPoolName = (pool: string): string => `chunk:${pool || 'default'}`;
export const isChunkPool = (name: string): boolean => name.startsWith('chunk:');

export function parseRecord<T>(value: string, what: string): T {
  try {
    return JSON.parse(value) as T;
  } catch {
    throw new Error(`corrupt ${what} record in the MDS store: ${value.slice(0, 80)}`);
  }
}
