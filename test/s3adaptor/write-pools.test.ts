// Reused memory on the write path: the adaptor's page pool (pages of committed flushes come
// back for later writes) and the disk cache's upload read-back buffers. A page or buffer handed
// out again while something still used it would show up as wrong bytes in S3 or in the cache.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DiskCache } from '../../diskcache/index.js';
import { S3Adaptor } from '../../s3adaptor/adaptor.js';
import { MemoryChunkIdAllocator, MemorySliceStore } from '../../s3adaptor/memory-slice-store.js';
import { listAll, type ObjectStore } from '../../s3adaptor/object-store.js';
import { parseBlockKey } from '../../s3adaptor/keys.js';
import { PagePool } from '../../s3adaptor/write-buffer.js';
import { startS3, type TestS3 } from '../support/s3.js';
import { tempDir } from '../support/tmp.js';
import { storeFor, waitFor } from './fixture.js';
import { rng } from './rng.js';

const MiB = 2 ** 20;
const CHUNK = 2 * MiB;
const BLOCK = MiB;
const FILE = 12 * MiB; // 6 chunks: later chunks reuse the pages of earlier flushes
const PIECE = 256 * 1024;
let s3: TestS3;
let store: ObjectStore;
const ids = new MemoryChunkIdAllocator();
const tmp = tempDir('tierfs-write-pools-');

before(async () => {
  s3 = await startS3();
  store = storeFor(s3);
});
after(async () => {
  store.close();
  await s3.close();
  tmp.remove();
});

test('PagePool hands back given pages, keeps at most maxPages, and trims when idle', () => {
  const pool = new PagePool(8192, 2); // above Node's pooled sizes: each page owns its memory
  const a = pool.take();
  const b = pool.take();
  const c = pool.take();
  assert.equal(a.length, 8192);
  pool.give([a, b, c, Buffer.alloc(10)]);
  assert.equal(pool.idlePages, 2, 'bounded; a wrong-sized buffer is not taken');
  const again = pool.take();
  assert.ok(again === a || again === b, 'a given page is reused');
  pool.trim(60_000);
  assert.equal(pool.idlePages, 1, 'not idle yet');
  pool.trim(0);
  assert.equal(pool.idlePages, 0);
});

/** Writes FILE bytes in PIECE writes from one source buffer that is overwritten after each write (as FUSE reuses it). */
async function writeFile(a: S3Adaptor, ino: number, seed: number): Promise<Buffer> {
  const expected = rng(seed).bytes(FILE);
  const source = Buffer.alloc(PIECE);
  for (let off = 0; off < FILE; off += PIECE) {
    expected.copy(source, 0, off, off + PIECE);
    await a.write(ino, off, source);
    source.fill(0xee); // the adaptor must have copied what it keeps
  }
  return expected;
}

async function keysOf(ino: number): Promise<string[]> {
  const out: string[] = [];
  for await (const o of listAll(store, '')) if (parseBlockKey(o.key)?.ino === ino && parseBlockKey(o.key)?.fsId === 9) out.push(o.key);
  return out;
}

async function assertInS3(slices: MemorySliceStore, ino: number, expected: Buffer): Promise<void> {
  const reader = new S3Adaptor({ fsId: 9, chunkSize: CHUNK, blockSize: BLOCK, objectStore: store, sliceStore: slices, chunkIds: new MemoryChunkIdAllocator(1e9) });
  try {
    const got = await reader.read(ino, 0, FILE, FILE);
    assert.ok(got.equals(expected), 'S3 holds exactly what was written');
  } finally {
    await reader.close();
  }
}

test('without writeback: recycled pages never leak into S3 objects or the blocks cached after the put', async () => {
  const slices = new MemorySliceStore();
  const cache = await DiskCache.open({ dir: join(tmp.path, 'plain'), capacityBytes: 256 * MiB, store });
  // A small budget keeps several flushes in flight while writers wait, so pages cycle quickly.
  const a = new S3Adaptor({ fsId: 9, chunkSize: CHUNK, blockSize: BLOCK, objectStore: store, sliceStore: slices, chunkIds: ids, diskCache: cache, memBudgetBytes: 6 * MiB });
  try {
    const expected = await writeFile(a, 1, 11);
    await a.flush(1);
    await assertInS3(slices, 1, expected);
    const keys = await keysOf(1);
    assert.ok(keys.length >= FILE / BLOCK, `${keys.length} objects`); // pressure flushes split chunks into more slices
    // Every block is cached from the written pages once its (background) cache write is done.
    await waitFor('written blocks in the disk cache', async () => (await Promise.all(keys.map((k) => cache.get(k)))).every((b) => b !== null));
    for (const key of keys) assert.ok((await cache.get(key))!.equals(await store.get(key)), `cached ${key} equals the object`);
  } finally {
    await a.close();
    await cache.close();
  }
});

test('writeback: staged blocks upload correctly through reused read-back buffers', async () => {
  const slices = new MemorySliceStore();
  const cache = await DiskCache.open({ dir: join(tmp.path, 'wb'), capacityBytes: 256 * MiB, store, uploadConcurrency: 2 });
  const a = new S3Adaptor({ fsId: 9, chunkSize: CHUNK, blockSize: BLOCK, objectStore: store, sliceStore: slices, chunkIds: ids, diskCache: cache, writeback: true, memBudgetBytes: 6 * MiB });
  try {
    const expected = await writeFile(a, 2, 22);
    await a.flush(2);
    await a.waitUploaded();
    assert.equal(cache.stats().uploadedBlocks, (await keysOf(2)).length);
    await assertInS3(slices, 2, expected);
  } finally {
    await a.close();
    await cache.close();
  }
});

test('a sequential writer commits each run of flushRunBytes before any flush: uploads overlap the writing', async () => {
  const slices = new MemorySliceStore();
  const a = new S3Adaptor({ fsId: 9, chunkSize: CHUNK, blockSize: BLOCK, objectStore: store, sliceStore: slices, chunkIds: ids, flushRunBytes: BLOCK });
  try {
    const data = rng(33).bytes(3 * MiB + 100);
    for (let off = 0; off < data.length; off += PIECE) await a.write(3, off, data.subarray(off, Math.min(data.length, off + PIECE)));
    // No flush yet: the three whole blocks are committed as the writer passed them; the 100-byte tail is only buffered.
    await waitFor('runs committed while writing', async () => {
      const committed = [...(await slices.getSlices(3)).values()].flat().reduce((n, s) => n + s.len, 0);
      return committed === 3 * MiB;
    });
    const perChunk = await slices.getSlices(3);
    assert.deepEqual([...perChunk.keys()].sort(), [0, 1]);
    for (const list of perChunk.values()) for (const s of list) assert.equal(s.len, BLOCK, 'one slice per block-aligned run');
    const reader = new S3Adaptor({ fsId: 9, chunkSize: CHUNK, blockSize: BLOCK, objectStore: store, sliceStore: slices, chunkIds: new MemoryChunkIdAllocator(1e9) });
    try {
      assert.ok((await reader.read(3, 0, 3 * MiB, 3 * MiB)).equals(data.subarray(0, 3 * MiB)), 'committed runs read back from S3');
      await a.flush(3);
      reader.invalidate(3);
      assert.ok((await reader.read(3, 0, data.length, data.length)).equals(data), 'and the tail after the flush');
    } finally {
      await reader.close();
    }
  } finally {
    await a.close();
  }
});
