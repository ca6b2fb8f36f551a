import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { S3Adaptor, type S3AdaptorOptions } from '../../s3adaptor/adaptor.js';
import { MemoryChunkIdAllocator, MemorySliceStore } from '../../s3adaptor/memory-slice-store.js';
import { listAll, type ObjectStore } from '../../s3adaptor/object-store.js';
import { parseBlockKey } from '../../s3adaptor/keys.js';
import { DiskCache } from '../../diskcache/index.js';
import { startS3, type TestS3 } from '../support/s3.js';
import { tempDir } from '../support/tmp.js';
import { storeFor, waitFor } from './fixture.js';

const KiB = 1024;
let s3: TestS3;
let store: ObjectStore;
const ids = new MemoryChunkIdAllocator(); // shared: two adaptors are two mounts of one fs

before(async () => {
  s3 = await startS3();
  store = storeFor(s3);
});
after(async () => {
  store.close();
  await s3.close();
});

function adaptor(slices: MemorySliceStore, extra: Partial<S3AdaptorOptions> = {}): S3Adaptor {
  return new S3Adaptor({ fsId: 5, chunkSize: 64 * KiB, blockSize: 16 * KiB, objectStore: store, sliceStore: slices, chunkIds: ids, ...extra });
}

async function keysOf(ino: number): Promise<string[]> {
  const out: string[] = [];
  for await (const o of listAll(store, '')) if (parseBlockKey(o.key)?.ino === ino && parseBlockKey(o.key)?.fsId === 5) out.push(o.key);
  return out;
}

test('a shrink masks the cut range: a later extension reads zeros, not stale bytes', async () => {
  const slices = new MemorySliceStore();
  const a = adaptor(slices);
  try {
    await a.write(1, 0, Buffer.alloc(100 * KiB, 0xaa));
    await a.flush(1);
    await a.truncate(1, 100 * KiB, 10);
    await a.truncate(1, 10, 100 * KiB);
    const got = await a.read(1, 0, 100 * KiB, 100 * KiB);
    assert.ok(got.subarray(0, 10).every((b) => b === 0xaa));
    assert.ok(got.subarray(10).every((b) => b === 0), 'no stale bytes after shrink + grow');
    const fresh = adaptor(slices);
    assert.ok((await fresh.read(1, 0, 100 * KiB, 100 * KiB)).subarray(10).every((b) => b === 0), 'masked in the committed slices too');
    await fresh.close();
  } finally {
    await a.close();
  }
});

test('a grow over bytes left beyond EOF appends a zero slice', async () => {
  const slices = new MemorySliceStore();
  const a = adaptor(slices);
  try {
    await a.write(2, 0, Buffer.alloc(200, 0xbb)); // the gateway lost the size update: EOF stays at 100
    await a.flush(2);
    await a.truncate(2, 100, 150);
    const chunk0 = (await slices.getSlices(2)).get(0)!;
    assert.ok(chunk0.some((s) => s.zero && s.offset === 100 && s.len === 50));
    const got = await a.read(2, 0, 150, 150);
    assert.ok(got.subarray(100).every((b) => b === 0));
  } finally {
    await a.close();
  }
});

test('fragmented chunks are compacted; old objects are deleted; a reader with stale slices refreshes', async () => {
  const slices = new MemorySliceStore();
  const registry = new Registry();
  const writer = adaptor(slices, { compactThreshold: 20, registry });
  const reader = adaptor(slices, { readCacheBytes: 1 }); // no memory cache: every read fetches
  const ref = Buffer.alloc(64 * KiB);
  try {
    for (let i = 0; i < 25; i++) {
      const data = Buffer.alloc(3 * KiB, i + 1);
      data.copy(ref, i * 2 * KiB);
      await writer.write(3, i * 2 * KiB, data);
      await writer.flush(3);
    }
    const size = 24 * 2 * KiB + 3 * KiB;
    assert.ok((await reader.read(3, 0, size, size)).equals(ref.subarray(0, size)), 'reader caches the fragmented slices');
    await waitFor('background compaction', () => writer.stats().compactions >= 1);
    const after = (await slices.getSlices(3)).get(0)!;
    assert.ok(after.length <= 5, `compacted to ${after.length} slices`);
    assert.ok(after.some((s) => s.compaction > 0));
    await waitFor('old objects deleted', async () => (await keysOf(3)).every((k) => parseBlockKey(k)!.compaction > 0 || after.some((s) => s.chunkId === parseBlockKey(k)!.chunkId)));
    // The reader's cached slices point at deleted objects: it must refresh and retry.
    assert.ok((await reader.read(3, 0, size, size)).equals(ref.subarray(0, size)));
    assert.match(await registry.metrics(), /tierfs_s3adaptor_flushes_total 25/);
    assert.equal(await writer.compact(3, 0), 'skipped', 'idempotent: nothing left to compact');
  } finally {
    await writer.close();
    await reader.close();
  }
});

test('deleteObjects removes every object of an inode and is idempotent', async () => {
  const slices = new MemorySliceStore();
  const a = adaptor(slices);
  try {
    await a.write(4, 5000, Buffer.alloc(150 * KiB, 1));
    await a.flush(4);
    assert.ok((await keysOf(4)).length >= 10);
    const s = await slices.getSlices(4);
    await a.deleteObjects(4, s);
    assert.deepEqual(await keysOf(4), []);
    await a.deleteObjects(4, s);
  } finally {
    await a.close();
  }
});

test('writers wait when the memory budget is used up; concurrent reads of a block share one fetch', async () => {
  const slices = new MemorySliceStore();
  const a = adaptor(slices, { memBudgetBytes: 4 * 16 * KiB, readCacheBytes: 8 * 2 ** 20, readaheadBlocks: 0 });
  try {
    let peak = 0;
    const data = Buffer.alloc(600 * KiB, 9);
    const sampler = setInterval(() => (peak = Math.max(peak, a.stats().memUsedBytes)), 1);
    await a.write(6, 0, data);
    clearInterval(sampler);
    await a.flush(6);
    assert.ok(peak <= 5 * 16 * KiB, `buffer stayed bounded (peak ${peak})`);
    const other = adaptor(slices, { readCacheBytes: 8 * 2 ** 20, readaheadBlocks: 0 });
    const reads = await Promise.all(Array.from({ length: 8 }, () => other.read(6, 16 * KiB, 16 * KiB, data.length)));
    assert.ok(reads.every((r) => r.equals(data.subarray(0, 16 * KiB))));
    assert.equal(other.stats().read.s3Fetches, 1);
    await other.close();
  } finally {
    await a.close();
  }
});

test('warmup fetches the visible blocks into the disk cache (not shadowed ones); reads then skip S3; evict drops them', async () => {
  const dir = tempDir('tierfs-warmup-');
  const slices = new MemorySliceStore();
  const writer = adaptor(slices);
  const disk = await DiskCache.open({ dir: dir.path, capacityBytes: 64 * 2 ** 20, store, fsync: false });
  const reader = adaptor(slices, { diskCache: disk });
  try {
    // 40 KiB = blocks 0,1 full + 8 KiB of block 2; then block 0 rewritten whole: its first
    // object is shadowed, so 3 objects hold the file's bytes.
    await writer.write(8, 0, Buffer.alloc(40 * KiB, 1));
    await writer.flush(8);
    await writer.write(8, 0, Buffer.alloc(16 * KiB, 2));
    await writer.flush(8);
    const first = await reader.warmup(8, 40 * KiB);
    assert.deepEqual(first, { blocks: 3, bytes: 40 * KiB, fetchedBlocks: 3, fetchedBytes: 40 * KiB, skippedFull: 0 });
    assert.equal((await reader.warmup(8, 40 * KiB)).fetchedBlocks, 0, 'already cached');
    const before = reader.stats().read.s3Fetches;
    const got = await reader.read(8, 0, 40 * KiB, 40 * KiB);
    assert.ok(got.subarray(0, 16 * KiB).every((b) => b === 2) && got.subarray(16 * KiB).every((b) => b === 1));
    assert.equal(reader.stats().read.s3Fetches, before, 'every block came from the disk cache');
    assert.deepEqual(await reader.evict(8), { blocks: 3, bytes: 40 * KiB });
    await reader.read(8, 0, 40 * KiB, 40 * KiB);
    assert.equal(reader.stats().read.s3Fetches, before + 3, 'evicted blocks come from S3 again');
    assert.equal((await adaptor(slices).warmup(8, 40 * KiB).catch((e: Error) => e)) instanceof Error, true, 'no disk cache: warmup refuses');
  } finally {
    await reader.close();
    await writer.close();
    await disk.close();
    dir.remove();
  }
});

test('a truncated and rewritten file drops its shadowed slices and their objects', async () => {
  const slices = new MemorySliceStore();
  const a = adaptor(slices);
  try {
    const size = 100 * KiB; // 2 chunks, 7 objects
    await a.write(12, 0, Buffer.alloc(size, 1));
    await a.flush(12);
    assert.equal((await keysOf(12)).length, 7);
    const oldIds = new Set([...(await slices.getSlices(12)).values()].flat().map((sl) => sl.chunkId));
    await a.truncate(12, size, 0); // O_TRUNC
    await a.write(12, 0, Buffer.alloc(size, 2));
    await a.flush(12);
    await waitFor('old objects deleted', async () => (await keysOf(12)).length === 7);
    const left = await slices.getSlices(12);
    const all = [...left.values()].flat();
    assert.ok(all.every((sl) => !oldIds.has(sl.chunkId)), `no old data slice is left: ${JSON.stringify(all)}`);
    // Chunk 1 keeps its truncate mask past the new 36 KiB (it still covers bytes; it has no objects).
    assert.deepEqual([0, 1].map((idx) => (left.get(idx) ?? []).filter((sl) => sl.zero).length), [0, 1], JSON.stringify([...left]));
    assert.equal(a.stats().droppedShadowedSlices, oldIds.size + 1, 'the old data slices of both chunks and the mask of chunk 0');
    const fresh = adaptor(slices);
    assert.ok((await fresh.read(12, 0, size, size)).equals(Buffer.alloc(size, 2)));
    await fresh.close();
  } finally {
    await a.close();
  }
});

test('a file marked new is written and closed without fetching its (empty) slices', async () => {
  const slices = new MemorySliceStore();
  const a = adaptor(slices);
  try {
    a.markNew(14);
    await a.write(14, 0, Buffer.from('small file'));
    await a.flush(14);
    assert.equal(slices.calls.get, 0, 'no getSlices for a file this mount just created');
    assert.equal(slices.calls.append, 1);
    assert.equal((await a.read(14, 0, 10, 10)).toString(), 'small file');
    a.markNew(15);
    a.invalidate(15); // a later open that sees another mount's change forgets the mark
    await a.write(15, 0, Buffer.from('x'));
    await a.flush(15);
    assert.equal(slices.calls.get, 1);
  } finally {
    await a.close();
  }
});
