import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { createObjectStore, listAll, type ObjectStore } from '../../s3adaptor/object-store.js';
import { StatusCode, TierfsError } from '../../common/status.js';
import { startS3, type TestS3 } from '../support/s3.js';
import { storeFor } from './fixture.js';

let s3: TestS3;
let store: ObjectStore;
const registry = new Registry();

before(async () => {
  s3 = await startS3();
  store = createObjectStore({
    endpoint: s3.endpoint, bucket: s3.bucket, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey,
    keyPrefix: 'fs7/', registry, concurrency: 4,
  });
});
after(async () => {
  store.close();
  await s3.close();
});

test('put, whole and inclusive ranged get, head, delete', async () => {
  const body = Buffer.from('0123456789abcdef');
  await store.put('a', body);
  assert.deepEqual(await store.get('a'), body);
  assert.equal((await store.get('a', 3, 4)).toString(), '3456');
  assert.equal((await store.get('a', 15, 1)).toString(), 'f');
  assert.deepEqual(await store.head('a'), { key: 'a', size: 16 });
  assert.equal(await store.head('nope'), null);
  await store.delete('a');
  await store.delete('a'); // idempotent
  await assert.rejects(store.get('a'), (err: unknown) => err instanceof TierfsError && err.code === StatusCode.NOT_FOUND);
});

test('the key prefix is applied on the wire and hidden from callers', async () => {
  await store.put('p1', Buffer.from('x'));
  const raw = storeFor(s3);
  try {
    assert.equal((await raw.get('fs7/p1')).toString(), 'x');
  } finally {
    raw.close();
  }
});

test('list pages with markers and batch delete', async () => {
  const keys = Array.from({ length: 7 }, (_, i) => `l/${i}`);
  await Promise.all(keys.map((k) => store.put(k, Buffer.from(k))));
  const first = await store.list('l/', undefined, 3);
  assert.deepEqual(first.objects.map((o) => o.key), ['l/0', 'l/1', 'l/2']);
  assert.equal(first.nextMarker, 'l/2');
  const all: string[] = [];
  for await (const o of listAll(store, 'l/')) all.push(o.key);
  assert.deepEqual(all, keys);
  await store.deleteMany([...keys, 'l/missing']);
  assert.deepEqual((await store.list('l/')).objects, []);
});

test('requests are measured; a stopped server fails after bounded retries with UNAVAILABLE', async () => {
  const text = await registry.metrics();
  assert.match(text, /tierfs_s3_request_seconds_count\{op="put"\} \d+/);
  const flaky = storeFor(s3, { maxAttempts: 2 });
  await s3.stop();
  try {
    await assert.rejects(flaky.put('down', Buffer.from('x')), (err: unknown) => err instanceof TierfsError && err.code === StatusCode.UNAVAILABLE && /2 attempt/.test(err.message));
    assert.equal(flaky.stats().retries, 1);
  } finally {
    await s3.restart();
    flaky.close();
  }
  await store.put('up-again', Buffer.from('y'));
  assert.equal((await store.get('up-again')).toString(), 'y');
});

test('large objects go up in parts (multipart upload) and read back whole and by range', async () => {
  const parts = new Registry();
  const mp = createObjectStore({
    endpoint: s3.endpoint, bucket: s3.bucket, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey,
    keyPrefix: 'fs7/', registry: parts, concurrency: 4, multipartThresholdBytes: 6 * 2 ** 20, partSizeBytes: 5 * 2 ** 20,
  });
  try {
    const body = Buffer.allocUnsafe(11 * 2 ** 20 + 123);
    for (let i = 0; i < body.length; i++) body[i] = (i * 2654435761) >>> 24;
    const before = mp.stats().requests;
    await mp.put('big', body);
    // create + 3 parts (5 MiB, 5 MiB, 1 MiB + 123) + complete
    assert.equal(mp.stats().requests - before, 5);
    assert.match(await parts.metrics(), /tierfs_s3_request_seconds_count\{op="put_part"\} 3/);
    assert.deepEqual(await mp.head('big'), { key: 'big', size: body.length });
    assert.ok((await mp.get('big')).equals(body));
    const across = 5 * 2 ** 20 - 10; // a range across the first part boundary
    assert.ok((await mp.get('big', across, 20)).equals(body.subarray(across, across + 20)));
    const small = Buffer.from('below the threshold');
    await mp.put('small', small);
    assert.deepEqual(await mp.get('small'), small);
    await mp.deleteMany(['big', 'small']);
  } finally {
    mp.close();
  }
});

test('a part size below what S3 allows is refused up front', () => {
  assert.throws(
    () => createObjectStore({ endpoint: s3.endpoint, bucket: s3.bucket, accessKeyId: 'a', secretAccessKey: 'b', partSizeBytes: 1024 }),
    (err: unknown) => err instanceof TierfsError && err.code === StatusCode.INVALID_ARGUMENT && /part size 1024/.test(err.message),
  );
});
