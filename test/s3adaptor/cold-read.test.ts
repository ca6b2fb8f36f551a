// The cold read path: a readahead window that grows with a sequential stream (8+ blocks in
// flight, memory-bounded), fetched blocks written to the disk cache only after the reader
// has them, ranged GETs for small random reads of big blocks, and small files prefetched
// whole at their first read. On the in-memory object store (with latency).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { S3Adaptor, type S3AdaptorOptions } from '../../s3adaptor/adaptor.js';
import { MemoryChunkIdAllocator, MemorySliceStore } from '../../s3adaptor/memory-slice-store.js';
import { MemoryObjectStore } from '../../s3adaptor/memory-object-store.js';
import { DiskCache } from '../../diskcache/index.js';
import { tempDir } from '../support/tmp.js';

const KiB = 1024;
const BLOCK = 256 * KiB;
const CHUNK = 16 * BLOCK;

function pattern(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + (i >> 12)) & 0xff;
  return b;
}

async function setup(size: number, extra: Partial<S3AdaptorOptions> = {}) {
  const store = new MemoryObjectStore();
  const slices = new MemorySliceStore();
  const ids = new MemoryChunkIdAllocator();
  const base = { fsId: 4, chunkSize: CHUNK, blockSize: BLOCK, objectStore: store, sliceStore: slices, chunkIds: ids };
  const writer = new S3Adaptor(base);
  const data = pattern(size);
  await writer.write(1, 0, data);
  await writer.flush(1);
  await writer.close();
  return { store, data, reader: (o: Partial<S3AdaptorOptions> = {}) => new S3Adaptor({ ...base, ...extra, ...o }) };
}

test('readahead grows with a sequential stream to 8+ blocks in flight, bounded by memory, and every byte is right', async () => {
  const size = 64 * BLOCK;
  const { store, data, reader } = await setup(size);
  store.latencyMs = 15;
  const a = reader({ readaheadBlocks: 16, readCacheBytes: 64 * BLOCK });
  try {
    let peak = 0;
    const buf = Buffer.alloc(128 * KiB);
    for (let off = 0; off < size; off += buf.length) {
      const n = await a.readInto(1, off, buf, size);
      assert.ok(buf.subarray(0, n).equals(data.subarray(off, off + n)), `bytes at ${off}`);
      peak = Math.max(peak, a.stats().read.prefetching, store.stats().inFlight);
    }
    assert.ok(peak >= 8, `at least 8 blocks in flight (peak ${peak})`);
    assert.ok(a.stats().read.s3Fetches <= 64, 'no block fetched twice');
    a.checkInvariants();
  } finally {
    await a.close();
  }
  // A small memory cache bounds the window: never more in flight than half of it holds.
  const small = reader({ readaheadBlocks: 16, readCacheBytes: 8 * BLOCK });
  try {
    let peak = 0;
    const buf = Buffer.alloc(128 * KiB);
    for (let off = 0; off < size; off += buf.length) {
      const n = await small.readInto(1, off, buf, size);
      assert.ok(buf.subarray(0, n).equals(data.subarray(off, off + n)), `bytes at ${off}`);
      peak = Math.max(peak, small.stats().read.prefetching);
    }
    assert.ok(peak <= 4, `memory-bounded readahead (peak ${peak})`);
  } finally {
    await small.close();
  }
});

test('a fetched block reaches the disk cache only after the reader has it', async () => {
  const dir = tempDir('tierfs-cold-');
  const { data, reader } = await setup(4 * BLOCK);
  const disk = await DiskCache.open({ dir: dir.path, capacityBytes: 64 * 2 ** 20, store: new MemoryObjectStore(), fsync: false });
  const a = reader({ diskCache: disk, readaheadBlocks: 0 });
  try {
    const got = await a.read(1, 0, BLOCK, 4 * BLOCK);
    assert.ok(got.equals(data.subarray(0, BLOCK)));
    assert.equal(disk.stats().files, 0, 'not written before the read returned');
    for (let i = 0; i < 200 && disk.stats().files < 1; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(disk.stats().files, 1, 'written afterwards');
  } finally {
    await a.close();
    await disk.close();
    dir.remove();
  }
});

test('small random reads of big uncached blocks use ranged GETs; a block read at random twice is fetched whole', async () => {
  const size = 32 * BLOCK;
  const { store, data, reader } = await setup(size);
  const a = reader({ readaheadBlocks: 16 });
  try {
    const buf = Buffer.alloc(4 * KiB);
    await a.readInto(1, 0, buf, size); // the first read starts the stream
    const before = { ...store.ops };
    const offsets = [20 * BLOCK + 4096, 5 * BLOCK + 8192, 27 * BLOCK + 100, 11 * BLOCK + 77 * KiB];
    for (const off of offsets) {
      const n = await a.readInto(1, off, buf, size);
      assert.ok(buf.subarray(0, n).equals(data.subarray(off, off + n)), `bytes at ${off}`);
    }
    assert.equal(store.ops.rangedGet - before.rangedGet, offsets.length, 'one ranged GET per random read');
    assert.equal(store.ops.get - before.get, 0, 'no whole block fetched');
    assert.equal(a.stats().read.rangedGets, offsets.length);
    const again = 20 * BLOCK + 64 * KiB;
    await a.readInto(1, again, buf, size);
    assert.ok(buf.equals(data.subarray(again, again + buf.length)));
    assert.equal(store.ops.get - before.get, 1, 'second random read of a block fetches it whole');
    a.checkInvariants();
  } finally {
    await a.close();
  }
});

test('the first read of a small file prefetches all of it', async () => {
  const size = 2 * BLOCK - 1000; // two objects
  const { store, data, reader } = await setup(size);
  store.latencyMs = 10;
  const a = reader();
  try {
    const first = await a.read(1, 0, 4 * KiB, size);
    assert.ok(first.equals(data.subarray(0, 4 * KiB)));
    for (let i = 0; i < 100 && a.stats().read.prefetching > 0; i++) await new Promise((r) => setTimeout(r, 5));
    const getsAfterFirst = store.ops.get;
    assert.equal(getsAfterFirst, 2, 'both objects fetched at the first read');
    const rest = await a.read(1, 4 * KiB, size, size);
    assert.ok(rest.equals(data.subarray(4 * KiB)));
    assert.equal(store.ops.get, getsAfterFirst, 'the rest came from memory');
  } finally {
    await a.close();
  }
});
