// Deletes the objects of a trashed inode from the filesystem's bucket. The S3 settings and
// the block/chunk sizes come from the MDS's FsInfo of each filesystem. Keys come from
// s3adaptor's pure key codec, so the writer and the deleter can never drift apart.
import * as grpc from '@grpc/grpc-js';
import { S3Client, DeleteObjectsCommand } from '@aws-sdk/client-s3';
import { CHANNEL_OPTIONS, clientCredentials, LeaderFollower, loadProto, unary } from '../common/grpc.js';
import { check } from '../common/status.js';
import type { ProtoGrpcType } from '../proto/gen/mds.js';
import type { FsResponse__Output } from '../proto/gen/tierfs/mds/FsResponse.js';
import type { FsInfo__Output } from '../proto/gen/tierfs/mds/FsInfo.js';
import type { ObjectDeleter } from './copyset-node.js';
import type { SliceRecord } from './meta-client.js';
import { blockKey, sliceBlockKey } from '../s3adaptor/keys.js';
import { sliceObjects } from '../s3adaptor/layout.js';

/**
 * Every object key an inode's slices own; blockIndex counts blocks from the start of the
 * file. Slices copied by reference own none, and shared slices' objects are read by other
 * inodes: both are left to fsck's GC, which sees every reference (s3adaptor/README.md). An
 * O_APPEND run's slices (`refOwned`) own the objects their reference reads.
 */
export function inodeObjectKeys(fsId: number, ino: number, slices: Map<number, SliceRecord[]>, blockSize: number, chunkSize: number): string[] {
  const keys = new Set<string>();
  const perChunk = Math.floor(chunkSize / blockSize);
  for (const [chunkIndex, list] of slices) {
    for (const s of list) {
      if (s.zero || s.len === 0 || s.shared) continue;
      if (s.ref) {
        if (s.refOwned) for (const o of sliceObjects(s, blockSize)) keys.add(sliceBlockKey(fsId, ino, chunkIndex, perChunk, s, o.blockIndex));
        continue;
      }
      const end = s.offset + s.len;
      for (let b = Math.floor(s.offset / blockSize); b * blockSize < end; b++) {
        keys.add(blockKey(fsId, ino, s.chunkId, chunkIndex * perChunk + b, s.compaction));
      }
    }
  }
  return [...keys];
}

interface FsTarget {
  client: S3Client;
  bucket: string;
  prefix: string;
  blockSize: number;
  chunkSize: number;
}

export class S3ObjectDeleter implements ObjectDeleter {
  private readonly mds: LeaderFollower<grpc.Client>;
  private readonly targets = new Map<number, FsTarget>();

  constructor(mdsAddresses: string[]) {
    const Ctor = loadProto<ProtoGrpcType>('mds.proto').tierfs.mds.MdsService;
    this.mds = new LeaderFollower(mdsAddresses, (a) => new Ctor(a, clientCredentials(), CHANNEL_OPTIONS));
  }

  /** The filesystem's bucket, or null when it keeps no data in S3 (nothing to delete). */
  private async target(fsId: number): Promise<FsTarget | null> {
    let t = this.targets.get(fsId);
    if (t) return t;
    const res = await this.mds.call((c) => unary<object, FsResponse__Output>(c, 'GetFsInfo', { name: '', fs_id: fsId }));
    check(res.status, `GetFsInfo ${fsId}`);
    const fs = res.fs as FsInfo__Output;
    const s3 = fs.s3;
    if (!s3 || !s3.bucket) return null;
    t = {
      client: new S3Client({
        endpoint: s3.endpoint || undefined, region: s3.region || 'us-east-1', forcePathStyle: true,
        credentials: { accessKeyId: s3.access_key, secretAccessKey: s3.secret_key },
        requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
      }),
      bucket: s3.bucket, prefix: s3.key_prefix, blockSize: fs.block_size || 4 << 20, chunkSize: fs.chunk_size || 64 << 20,
    };
    this.targets.set(fsId, t);
    return t;
  }

  async deleteInodeObjects(fsId: number, ino: number, slices: Map<number, SliceRecord[]>): Promise<void> {
    if (slices.size === 0) return;
    const t = await this.target(fsId);
    if (!t) return;
    const keys = inodeObjectKeys(fsId, ino, slices, t.blockSize, t.chunkSize).map((k) => t.prefix + k);
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      // Missing keys count as deleted (S3 semantics), so a retried purge is harmless.
      const res = await t.client.send(new DeleteObjectsCommand({ Bucket: t.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
      if (res.Errors && res.Errors.length > 0) throw new Error(`deleting objects of inode ${ino}: ${res.Errors[0]!.Code} ${res.Errors[0]!.Message}`);
    }
  }

  close(): void {
    for (const t of this.targets.values()) t.client.destroy();
    this.mds.close();
  }
}
