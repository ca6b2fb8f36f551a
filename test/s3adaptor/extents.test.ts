// fallocate modes, SEEK_DATA/SEEK_HOLE and allocated bytes (st_blocks) against a real s3rver:
// buffered, flushing and committed data all count; holes and zero slices do not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StatusCode, TierfsError } from '../../common/status.js';
import { S3Adaptor, type S3AdaptorOptions } from '../../s3adaptor/adaptor.js';
import { MemoryChunkIdAllocator, MemorySliceStore } from '../../s3adaptor/memory-slice-store.js';
import type { ObjectStore } from '../../s3adaptor/object-store.js';
import { useMemoryStore } from './fixture.js';
import { rng } from './rng.js';

const KiB = 1024;
const CHUNK = 64 * KiB;
const BLOCK = 16 * KiB;
let store: ObjectStore;
const ids = new MemoryChunkIdAllocator();

useMemoryStore((s) => {
  store = s;
});

function adaptor(slices: MemorySliceStore, extra: Partial<S3AdaptorOptions> = {}): S3Adaptor {
  return new S3Adaptor({ fsId: 31, chunkSize: CHUNK, blockSize: BLOCK, objectStore: store, sliceStore: slices, chunkIds: ids, ...extra });
}

const enxio = (e: unknown) => e instanceof TierfsError && e.code === StatusCode.BEYOND_EOF && e.errno === 6;

test('punch hole: the range reads as zeros, size stays, allocated bytes drop; buffered and committed data alike', async () => {
  const slices = new MemorySliceStore();
  const a = adaptor(slices);
  const r = rng(11);
  const size = 3 * CHUNK;
  const want = r.bytes(size);
  try {
    await a.write(1, 0, want.subarray(0, 2 * CHUNK));
    await a.flush(1);
    await a.write(1, 2 * CHUNK, want.subarray(2 * CHUNK)); // still buffered
    assert.equal(await a.allocatedBytes(1), size);
    // Unaligned, across a chunk boundary and into the buffered chunk.
    const [off, len] = [CHUNK - 1000, CHUNK + 5000];
    await a.punchHole(1, off, len, size);
    want.fill(0, off, off + len);
    assert.ok((await a.read(1, 0, size, size)).equals(want));
    assert.equal(await a.allocatedBytes(1), size - len);
    // Past the end nothing happens (KEEP_SIZE): the size is the caller's and stays.
    await a.punchHole(1, size - 10, 1000, size);
    want.fill(0, size - 10);
    await a.flush(1);
    await a.close();
    const b = adaptor(slices);
    assert.ok((await b.read(1, 0, size, size)).equals(want), 'committed as zero slices');
    assert.equal(await b.allocatedBytes(1), size - len - 10);
    await b.close();
  } finally {
    await a.close();
  }
});

test('zero range and allocate: zeros inside, size grows unless KEEP_SIZE, nothing stored', async () => {
  const slices = new MemorySliceStore();
  const a = adaptor(slices);
  const data = rng(12).bytes(50 * KiB);
  try {
    await a.write(2, 0, data);
    await a.flush(2);
    assert.equal(await a.zeroRange(2, 10 * KiB, 5 * KiB, data.length), data.length);
    assert.equal(await a.zeroRange(2, 40 * KiB, 30 * KiB, data.length), 70 * KiB, 'grows to the end of the range');
    assert.equal(await a.zeroRange(2, 60 * KiB, 30 * KiB, 70 * KiB, true), 70 * KiB, 'KEEP_SIZE');
    const want = Buffer.alloc(70 * KiB);
    data.copy(want);
    want.fill(0, 10 * KiB, 15 * KiB);
    want.fill(0, 40 * KiB);
    assert.ok((await a.read(2, 0, want.length, want.length)).equals(want));
    assert.equal(await a.allocatedBytes(2), 35 * KiB);

    const puts = store.stats().bytesPut;
    assert.equal(await a.allocate(2, 0, 10 * KiB, 70 * KiB), 70 * KiB, 'inside the file: no change');
    assert.equal(await a.allocate(2, 100 * KiB, 1000, 70 * KiB, true), 70 * KiB, 'KEEP_SIZE');
    assert.equal(await a.allocate(2, 100 * KiB, 1000, 70 * KiB), 100 * KiB + 1000);
    assert.equal(store.stats().bytesPut, puts, 'no data stored for an allocation');
    const got = await a.read(2, 0, 100 * KiB + 1000, 100 * KiB + 1000);
    assert.ok(got.subarray(0, want.length).equals(want));
    assert.ok(got.subarray(want.length).every((b) => b === 0));
    assert.equal(await a.allocatedBytes(2), 35 * KiB, 'allocating holds no bytes');
  } finally {
    await a.close();
  }
});

test('SEEK_DATA / SEEK_HOLE on a sparse file: committed, buffered and punched ranges', async () => {
  const slices = new MemorySliceStore();
  const a = adaptor(slices);
  const size = 5 * CHUNK + 300;
  try {
    await a.truncate(3, 0, size);
    await a.write(3, 1000, Buffer.alloc(9000, 1)); // [1000, 10000)
    await a.write(3, 2 * CHUNK + 7, Buffer.alloc(CHUNK, 2)); // [2C+7, 3C+7) across a chunk boundary
    await a.flush(3);
    await a.write(3, 4 * CHUNK, Buffer.alloc(100, 3)); // buffered [4C, 4C+100)
    await a.punchHole(3, 2 * CHUNK + 107, 100, size); // hole [2C+107, 2C+207)

    assert.equal(await a.seekData(3, 0, size), 1000);
    assert.equal(await a.seekHole(3, 0, size), 0, 'at a hole: the offset itself');
    assert.equal(await a.seekHole(3, 1000, size), 10000);
    assert.equal(await a.seekData(3, 10000, size), 2 * CHUNK + 7, 'skips the empty chunk');
    assert.equal(await a.seekHole(3, 2 * CHUNK + 7, size), 2 * CHUNK + 107, 'the punched hole');
    assert.equal(await a.seekData(3, 2 * CHUNK + 107, size), 2 * CHUNK + 207);
    assert.equal(await a.seekHole(3, 2 * CHUNK + 207, size), 3 * CHUNK + 7, 'data runs on over the chunk boundary');
    assert.equal(await a.seekData(3, 3 * CHUNK + 7, size), 4 * CHUNK, 'buffered data counts');
    assert.equal(await a.seekHole(3, 4 * CHUNK, size), 4 * CHUNK + 100);
    await assert.rejects(a.seekData(3, 4 * CHUNK + 100, size), enxio, 'no data after the last');
    assert.equal(await a.seekHole(3, size - 1, size), size - 1);
    await assert.rejects(a.seekData(3, size, size), enxio);
    await assert.rejects(a.seekHole(3, size, size), enxio);

    // Data to the very end: SEEK_HOLE answers the size (the virtual hole at EOF).
    await a.write(4, 0, Buffer.alloc(20 * KiB, 9));
    assert.equal(await a.seekHole(4, 5, 20 * KiB), 20 * KiB);
    assert.equal(await a.seekData(4, 5, 20 * KiB), 5);
  } finally {
    await a.close();
  }
});

test('allocated bytes of a sparse 10 GiB file is 0, then what was written; the default layout', async () => {
  const slices = new MemorySliceStore();
  const a = adaptor(slices, { chunkSize: 64 * 2 ** 20, blockSize: 4 * 2 ** 20 });
  const GiB = 2 ** 30;
  try {
    await a.truncate(5, 0, 10 * GiB);
    assert.equal(await a.allocatedBytes(5), 0);
    assert.equal(await a.seekHole(5, 0, 10 * GiB), 0);
    await assert.rejects(a.seekData(5, 0, 10 * GiB), enxio);
    await a.write(5, 5 * GiB + 3, Buffer.alloc(4096, 1));
    assert.equal(await a.allocatedBytes(5), 4096, 'buffered');
    await a.flush(5);
    assert.equal(await a.allocatedBytes(5), 4096, 'committed');
    assert.equal(await a.seekData(5, 0, 10 * GiB), 5 * GiB + 3);
    assert.equal(await a.seekHole(5, 5 * GiB + 3, 10 * GiB), 5 * GiB + 3 + 4096);
    // Overwriting the same bytes does not count them twice; truncating them away frees them.
    await a.write(5, 5 * GiB + 3, Buffer.alloc(4096, 2));
    await a.flush(5);
    assert.equal(await a.allocatedBytes(5), 4096);
    await a.truncate(5, 10 * GiB, 5 * GiB);
    assert.equal(await a.allocatedBytes(5), 0);
    assert.equal(a.cachedAllocatedBytes(5), 0);
    const other = adaptor(slices, { chunkSize: 64 * 2 ** 20, blockSize: 4 * 2 ** 20 });
    await a.write(5, 0, Buffer.alloc(100, 1));
    await a.flush(5);
    assert.equal(other.cachedAllocatedBytes(5), null, 'not cached: no answer, and no metaserver read');
    assert.equal(await other.allocatedBytes(5), 100);
    assert.equal(other.cachedAllocatedBytes(5), 100);
    await other.close();
  } finally {
    await a.close();
  }
});

test('compaction keeps punched holes and truncated tails as holes (no zeros written back)', async () => {
  const slices = new MemorySliceStore();
  const a = adaptor(slices, { compactThreshold: 0 });
  const data = rng(13).bytes(CHUNK);
  try {
    await a.write(6, 0, data);
    await a.flush(6);
    await a.punchHole(6, BLOCK, 2 * BLOCK, CHUNK); // two whole blocks
    await a.truncate(6, CHUNK, CHUNK - 1000);
    await a.truncate(6, CHUNK - 1000, CHUNK);
    const putsBefore = store.stats().bytesPut;
    assert.equal(await a.compact(6, 0, true), 'compacted');
    assert.equal(store.stats().bytesPut - putsBefore, 2 * BLOCK - 1000, 'only the data runs are rewritten');
    const want = Buffer.from(data);
    want.fill(0, BLOCK, 3 * BLOCK);
    want.fill(0, CHUNK - 1000);
    assert.ok((await a.read(6, 0, CHUNK, CHUNK)).equals(want));
    assert.equal(await a.allocatedBytes(6), 2 * BLOCK - 1000);
    assert.equal(await a.seekHole(6, 0, CHUNK), BLOCK);
    assert.equal(await a.seekData(6, BLOCK, CHUNK), 3 * BLOCK);
    assert.equal(await a.seekHole(6, 3 * BLOCK, CHUNK), CHUNK - 1000);
  } finally {
    await a.close();
  }
});
