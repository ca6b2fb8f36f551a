import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { DiskCache } from '../../diskcache/index.js';
import { S3Adaptor } from '../../s3adaptor/adaptor.js';
import { MemoryChunkIdAllocator, MemorySliceStore } from '../../s3adaptor/memory-slice-store.js';
import type { ObjectStore } from '../../s3adaptor/object-store.js';
import { startS3, type TestS3 } from '../support/s3.js';
import { tempDir } from '../support/tmp.js';
import { storeFor, waitFor } from '../s3adaptor/fixture.js';
import { rng } from '../s3adaptor/rng.js';

let s3: TestS3;
let store: ObjectStore;
let s3Down = false;
/** Stops S3; afterEach brings it back even when a test failed half way. */
async function stopS3(): Promise<void> {
  s3Down = true;
  await s3.stop();
}
async function restartS3(): Promise<void> {
  s3Down = false;
  await s3.restart();
}
const tmp = tempDir('tierfs-diskcache-');
const files = (dir: string) => readdirSync(dir).filter((n) => !n.startsWith('.'));

before(async () => {
  s3 = await startS3();
  store = storeFor(s3, { maxAttempts: 1 });
});
afterEach(async () => {
  if (s3Down) await restartS3();
});
after(async () => {
  store.close();
  await s3.close();
  tmp.remove();
});

test('a staged block is linked into read/, uploaded, and then kept only as read cache', async () => {
  const registry = new Registry();
  const cache = await DiskCache.open({ dir: join(tmp.path, 'basic'), capacityBytes: 2 ** 20, store, registry });
  try {
    const data = Buffer.from('block contents');
    assert.equal(await cache.stage('k1', data), true);
    assert.ok(existsSync(join(cache.readDir, 'k1')));
    await cache.flush();
    assert.deepEqual(files(cache.writeDir), []);
    assert.deepEqual(await store.get('k1'), data);
    assert.deepEqual(await cache.get('k1'), data);
    assert.equal(await cache.get('missing'), null);
    const st = cache.stats();
    assert.equal(st.stagedBlocks, 0);
    assert.equal(st.uploadedBlocks, 1);
    assert.equal(st.hitRatio, 0.5);
    const text = await registry.metrics();
    for (const name of ['tierfs_diskcache_staged_blocks', 'tierfs_diskcache_staged_bytes', 'tierfs_diskcache_hit_ratio', 'tierfs_diskcache_bytes', 'tierfs_diskcache_uploaded_blocks_total']) {
      assert.match(text, new RegExp(`^${name} `, 'm'));
    }
  } finally {
    await cache.close();
  }
});

test('trimming respects the watermarks and never drops a block not yet uploaded', async () => {
  const dir = join(tmp.path, 'trim');
  const block = Buffer.alloc(64 * 1024, 7);
  // An S3 that refuses every upload, so no block can leave write/ while staging is counted
  // (a real S3 stopped mid-write is the last test's subject).
  const down = { put: async (): Promise<void> => { throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }); } };
  let cache = await DiskCache.open({ dir, capacityBytes: 1024 * 1024, store: down, retryBaseMs: 20, retryMaxMs: 100 });
  try {
    let staged = 0;
    while (await cache.stage(`s${staged}`, block)) staged++;
    assert.equal(staged, 14, 'staging stops at 90% of capacity (14 x 64 KiB of 1 MiB)');
    assert.equal(cache.canStage(block.length), false);
    await cache.trimNow();
    assert.equal(cache.stats().stagedBlocks, 14, 'trimming cannot evict staged blocks');
    assert.equal(files(cache.readDir).length, 14);
    await waitFor('failed upload attempts', () => cache.stats().uploadErrors > 0);
    await cache.close(); // blocks stay in write/ for the next open

    cache = await DiskCache.open({ dir, capacityBytes: 1024 * 1024, store });
    const reopened = cache.stats(); // uploads start during open: count both sides
    assert.equal(reopened.stagedBlocks + reopened.uploadedBlocks, 14);
    await cache.flush();
    for (let i = 0; i < 14; i++) assert.deepEqual(await store.get(`s${i}`), block);
    await cache.get('s13'); // most recently used: must survive the trim
    await cache.trimNow();
    const st = cache.stats();
    assert.ok(st.usage <= 0.35, `trimmed down to the low watermark (usage ${st.usage})`);
    assert.ok(st.usage > 0.35 - 64 / 1024, 'and not much further');
    assert.ok(existsSync(join(cache.readDir, 's13')), 'LRU order: the block just read stays');
    assert.ok(!existsSync(join(cache.readDir, 's0')), 'the least recently used block went first');
    assert.equal(st.trimmedBlocks, 14 - files(cache.readDir).length);
  } finally {
    await cache.close();
  }
});

test('readInto copies a range of a cached block into a caller buffer; a removed block misses', async () => {
  const cache = await DiskCache.open({ dir: join(tmp.path, 'into'), capacityBytes: 2 ** 20, store });
  try {
    const data = Buffer.from('0123456789abcdef');
    assert.equal(await cache.stage('r1', data), true);
    const target = Buffer.alloc(8, 0xee);
    assert.equal(await cache.readInto('r1', data.length, 4, 6, target, 1), true, 'a staged block is read');
    assert.deepEqual(target, Buffer.from([0xee, ...Buffer.from('456789'), 0xee]));
    await cache.flush();
    assert.equal(await cache.readInto('r1', data.length, 10, 6, target, 0), true, 'an uploaded block is read through the same handle');
    assert.equal(target.subarray(0, 6).toString(), 'abcdef');
    assert.equal(await cache.readInto('r1', data.length + 1, 0, 4, target, 0), false, 'another size is another block');
    assert.equal(await cache.readInto('r1', data.length, 12, 8, target, 0), false, 'a range past the block misses');
    assert.equal(cache.has('r1', data.length), true);
    await cache.remove('r1');
    assert.equal(cache.has('r1', data.length), false);
    assert.equal(await cache.readInto('r1', data.length, 0, 4, target, 0), false, 'a removed block misses');
  } finally {
    await cache.close();
  }
});

test('a file-count cap limits staging like the byte cap', async () => {
  await stopS3(); // uploaded blocks would become read cache and be trimmed
  const cache = await DiskCache.open({ dir: join(tmp.path, 'count'), capacityBytes: 2 ** 30, maxFiles: 10, store, retryBaseMs: 20, retryMaxMs: 100 });
  try {
    let n = 0;
    while (await cache.stage(`c${n}`, Buffer.from([n]))) n++;
    assert.equal(n, 8, '9 of 10 files would reach the 90% watermark');
    assert.equal(cache.stats().stagedBlocks, 8);
    await restartS3();
    await cache.flush();
  } finally {
    await cache.close();
  }
});

test('with S3 stopped mid-write, writes keep staging, nothing is lost, uploads resume', async () => {
  const slices = new MemorySliceStore();
  const cache = await DiskCache.open({ dir: join(tmp.path, 'outage'), capacityBytes: 64 * 2 ** 20, store, retryBaseMs: 20, retryMaxMs: 200 });
  const adaptor = new S3Adaptor({ fsId: 2, chunkSize: 256 * 1024, blockSize: 64 * 1024, objectStore: store, sliceStore: slices, chunkIds: new MemoryChunkIdAllocator(), diskCache: cache, writeback: true });
  const r = rng(5);
  const expected = r.bytes(3 * 2 ** 20);
  const ino = 9;
  try {
    const half = expected.length / 2;
    await adaptor.write(ino, 0, expected.subarray(0, half));
    await stopS3();
    await adaptor.write(ino, half, expected.subarray(half));
    await adaptor.flush(ino); // writeback: returns once staged and committed
    assert.ok(cache.stats().stagedBlocks > 0);
    assert.ok((await adaptor.read(ino, 0, expected.length, expected.length)).equals(expected), 'readable from the disk cache while S3 is down');
    await waitFor('upload retries', () => cache.stats().uploadErrors > 0);
    await restartS3();
    await adaptor.waitUploaded();
    assert.equal(cache.stats().stagedBlocks, 0);
    const fromS3 = new S3Adaptor({ fsId: 2, chunkSize: 256 * 1024, blockSize: 64 * 1024, objectStore: store, sliceStore: slices, chunkIds: new MemoryChunkIdAllocator(1e6) });
    assert.ok((await fromS3.read(ino, 0, expected.length, expected.length)).equals(expected), 'identical from S3 alone');
    await fromS3.close();
  } finally {
    await adaptor.close();
    await cache.close();
  }
});

test('uploadDelayMs: uploads wait while writers stage, start once staging pauses, at once past a quarter of the cache or for a flush', async () => {
  const block = Buffer.alloc(256 * 1024, 7);
  const inS3 = async (key: string) => (await store.get(key).then(() => true, () => false));
  // A long delay: nothing may upload while it runs, only a flush (drain) lets the blocks go.
  const held = await DiskCache.open({ dir: join(tmp.path, 'hold-flush'), capacityBytes: 64 * 2 ** 20, store, uploadDelayMs: 120_000 });
  try {
    for (let i = 0; i < 3; i++) assert.equal(await held.stage(`hold-f${i}`, block), true);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(held.stats().uploadedBlocks, 0, 'held while the writer may go on');
    assert.equal(held.stats().uploadsHeld, true);
    assert.equal(await inS3('hold-f0'), false);
    await held.flush(); // a flush does not wait out the delay
    assert.equal(held.stats().uploadedBlocks, 3);
    assert.equal(await inS3('hold-f2'), true);
  } finally {
    await held.close();
  }
  // A short delay: the blocks upload on their own once staging pauses.
  const quiet = await DiskCache.open({ dir: join(tmp.path, 'hold-quiet'), capacityBytes: 64 * 2 ** 20, store, uploadDelayMs: 300 });
  try {
    assert.equal(await quiet.stage('hold-q0', block), true);
    await waitFor('upload after the pause', () => quiet.stats().uploadedBlocks === 1, 20_000);
    assert.equal(quiet.stats().uploadsHeld, false);
  } finally {
    await quiet.close();
  }
  // A backlog past a quarter of the capacity (1 MiB of 4) uploads although writes go on.
  const full = await DiskCache.open({ dir: join(tmp.path, 'hold-backlog'), capacityBytes: 4 * 2 ** 20, store, uploadDelayMs: 120_000 });
  try {
    for (let i = 0; i < 5; i++) assert.equal(await full.stage(`hold-b${i}`, block), true);
    await waitFor('the whole backlog uploads during the delay', () => full.stats().uploadedBlocks === 5, 20_000);
  } finally {
    await full.close();
  }
});

test('evict drops cached blocks but never a staged one; limits change at runtime, checked as a whole', async () => {
  const down = { put: async (): Promise<void> => { throw new Error('S3 down'); } };
  const cache = await DiskCache.open({ dir: join(tmp.path, 'tune'), capacityBytes: 1024 * 1024, store: down, retryBaseMs: 50, retryMaxMs: 100 });
  try {
    const block = Buffer.alloc(64 * 1024, 3);
    assert.equal(await cache.put('cached1', block), true);
    assert.equal(await cache.put('cached2', block), true);
    assert.equal(await cache.stage('staged1', block), true);
    assert.equal(await cache.evict('staged1'), 0, 'a staged block is the only copy: never evicted');
    assert.equal(await cache.evict('cached1'), block.length);
    assert.equal(await cache.evict('cached1'), 0);
    assert.deepEqual(await cache.evictAll(), { blocks: 1, bytes: block.length });
    assert.ok(cache.has('staged1', block.length));
    assert.deepEqual(files(cache.readDir), ['staged1']);

    const before = cache.limits();
    assert.throws(() => cache.configure({ trimLowWatermark: 0.8 }), /watermarks must satisfy/);
    assert.throws(() => cache.configure({ uploadConcurrency: 0 }), /upload concurrency 0/);
    assert.deepEqual(cache.limits(), before, 'a refused change changes nothing');
    for (let i = 0; i < 6; i++) assert.equal(await cache.put(`r${i}`, block), true);
    // 7 blocks of 64 KiB in 512 KiB: 0.875, above the new high watermark 0.7, trimmed to 0.35
    // of it; the staged block stays.
    assert.equal(cache.configure({ capacityBytes: 512 * 1024, uploadConcurrency: 2 }).capacityBytes, 512 * 1024);
    await cache.trimNow();
    assert.ok(cache.stats().usage <= 0.35, `trimmed after lowering the capacity (usage ${cache.stats().usage})`);
    assert.ok(cache.has('staged1', block.length));
    assert.equal(cache.canStage(block.length), true);
  } finally {
    await cache.close();
  }
});

test('a disk that fills up between samples: staging answers false (the caller goes to S3), nothing half-written stays', async (t) => {
  const dir = join(tmp.path, 'tiny');
  mkdirSync(dir);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', dir]);
  } catch {
    t.skip('cannot mount a tmpfs here (needs root)');
    return;
  }
  const cache = await DiskCache.open({ dir, capacityBytes: 2 ** 30, store, checkIntervalMs: 3_600_000 });
  try {
    const block = Buffer.alloc(64 * 1024, 5);
    assert.equal(await cache.stage('fits', block), true);
    await cache.flush();
    writeFileSync(join(dir, 'filler'), Buffer.alloc(512 * 1024 - 3 * 64 * 1024)); // only 1-2 blocks of room now
    let staged = 0;
    for (let i = 0; i < 6; i++) if (await cache.stage(`b${i}`, block)) staged++;
    assert.ok(staged < 6, 'the disk ran out');
    assert.equal(cache.canStage(block.length), false, 'counted as full until the next sample');
    assert.deepEqual(readdirSync(cache.writeDir).filter((n) => n.startsWith('.')), [], 'no temp file left behind');
    assert.equal(files(cache.writeDir).length, cache.stats().stagedBlocks, 'write/ holds exactly the staged blocks');
    assert.equal(await cache.put('readcache', block), false, 'read-cache admission refuses too');
    await cache.flush();
    for (let i = 0; i < staged; i++) assert.deepEqual(await store.get(`b${i}`), block);
  } finally {
    await cache.close();
    execFileSync('umount', [dir]);
  }
});
