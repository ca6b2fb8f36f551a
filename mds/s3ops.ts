// What the MDS does in a filesystem's bucket: check it exists at CreateFs, and remove a
// deleted filesystem's objects (keys `<keyPrefix><hash>_{fsId}_{ino}_{chunkId}_{block}_{compaction}`).
import { S3Client, HeadBucketCommand, ListObjectsV2Command, DeleteObjectsCommand } from '@aws-sdk/client-s3';
import { StatusCode, TierfsError } from '../common/status.js';
import type { S3Record } from './records.js';
import { parseBlockKey } from '../s3adaptor/keys.js';

export function s3Client(s3: S3Record, timeoutMs: number): S3Client {
  return new S3Client({
    endpoint: s3.endpoint,
    region: s3.region || 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 1,
    requestHandler: { requestTimeout: timeoutMs, connectionTimeout: timeoutMs },
  });
}

/** HeadBucket, with an error a person can act on for each way it fails. */
export async function checkBucket(s3: S3Record, timeoutMs: number): Promise<void> {
  const client = s3Client(s3, timeoutMs);
  try {
    await client.send(new HeadBucketCommand({ Bucket: s3.bucket }));
  } catch (err) {
    const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number }; code?: string };
    const status = e.$metadata?.httpStatusCode;
    if (status === 404 || e.name === 'NotFound' || e.name === 'NoSuchBucket') {
      throw new TierfsError(StatusCode.NOT_FOUND, `bucket "${s3.bucket}" does not exist at ${s3.endpoint}; create it first`);
    }
    if (status === 403 || status === 401) {
      throw new TierfsError(StatusCode.PERMISSION_DENIED, `S3 at ${s3.endpoint} rejected the access key/secret key for bucket "${s3.bucket}"`);
    }
    throw new TierfsError(StatusCode.UNAVAILABLE, `cannot reach S3 endpoint ${s3.endpoint}: ${e.name ?? ''} ${e.message ?? e.code ?? String(err)}`.trim());
  } finally {
    client.destroy();
  }
}

/** The fsId of a tierfs block key (after the key prefix), or null for anything else. */
export function fsIdOfObjectKey(key: string, keyPrefix: string): number | null {
  if (!key.startsWith(keyPrefix)) return null;
  return parseBlockKey(key.slice(keyPrefix.length))?.fsId ?? null;
}

/**
 * Deletes up to `maxBatches` pages of the filesystem's objects. Returns true when none
 * remain (the caller then forgets the filesystem), false when there may be more.
 */
export async function deleteFsObjects(s3: S3Record, fsId: number, timeoutMs: number, maxBatches = 20): Promise<boolean> {
  const client = s3Client(s3, timeoutMs);
  try {
    let token: string | undefined;
    for (let batch = 0; batch < maxBatches; batch++) {
      const page = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: s3.keyPrefix || undefined, ContinuationToken: token, MaxKeys: 1000 }));
      const mine = (page.Contents ?? []).map((o) => o.Key ?? '').filter((k) => fsIdOfObjectKey(k, s3.keyPrefix) === fsId);
      if (mine.length > 0) {
        await client.send(new DeleteObjectsCommand({ Bucket: s3.bucket, Delete: { Objects: mine.map((Key) => ({ Key })), Quiet: true } }));
      }
      if (!page.IsTruncated) return true;
      token = page.NextContinuationToken;
    }
    return false;
  } finally {
    client.destroy();
  }
}
