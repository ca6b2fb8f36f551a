import { test } from 'node:test';
import assert from 'node:assert/strict';
import { S3Client, PutObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { Etcd3 } from 'etcd3';
import { startEtcd } from './etcd.js';
import { startS3 } from './s3.js';

test('a real etcd starts on a free port, stores a key, and stops by PID', async () => {
  const etcd = await startEtcd();
  const client = new Etcd3({ hosts: etcd.endpoint });
  try {
    await client.put('k').value('v');
    assert.equal(await client.get('k').string(), 'v');
  } finally {
    client.close();
    await etcd.close();
  }
  assert.throws(() => process.kill(etcd.proc.pid, 0));
});

test('a real s3rver answers put and inclusive ranged get, and survives kill -9 + restart', async () => {
  const s3 = await startS3();
  const client = new S3Client({
    endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
  });
  try {
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'obj', Body: Buffer.from('0123456789') }));
    const got = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: 'obj', Range: 'bytes=2-5' }));
    assert.equal(Buffer.from(await got.Body!.transformToByteArray()).toString(), '2345');
    await s3.stop(true);
    await s3.restart();
    const again = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: 'obj' }));
    assert.equal(Buffer.from(await again.Body!.transformToByteArray()).toString(), '0123456789');
  } finally {
    client.destroy();
    await s3.close();
  }
});
