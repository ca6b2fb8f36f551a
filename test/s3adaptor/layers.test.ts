// The data path in layers: block caches composed in order (memory -> disk -> S3), each asked
// once per lookup, and the counts that must add up. On the in-memory object store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { S3Adaptor, type S3AdaptorOptions } from '../../s3adaptor/adaptor.js';
import { MemoryChunkIdAllocator, MemorySliceStore } from '../../s3adaptor/memory-slice-store.js';
import { MemoryObjectStore } from '../../s3adaptor/memory-object-store.js';
import { listAll } from '../../s3adaptor/object-store.js';
import { DiskCache } from '../../diskcache/index.js';
import { tempDir } from '../support/tmp.js';

const KiB = 1024;
const BLOCK = 16 * KiB;

function adaptor(store: MemoryObjectStore, slices: MemorySliceStore, ids: MemoryChunkIdAllocator, extra: Partial<S3AdaptorOptions> = {}): S3Adaptor {
  return new S3Adaptor({ fsId: 3, chunkSize: 64 * KiB, blockSize: BLOCK, objectStore: store, sliceStore: slices, chunkIds: ids, ...extra });
}

test('the in-memory object store keeps the ObjectStore contract: copies on put, ranges, listing with markers, idempotent delete', async () => {
  const s = new MemoryObjectStore();
  const body = Buffer.from('hello world');
  await s.put('b/1', body);
  body.fill(0); // the caller reuses its buffer
  assert.equal((await s.get('b/1')).toString(), 'hello world');
  assert.equal((await s.get('b/1', 6, 5)).toString(), 'world');
  await s.put('a/1', Buffer.from('x'));
  await s.put('b/2', Buffer.from('yy'));
  const page = await s.list('b/', undefined, 1);
  assert.deepEqual(page.objects.map((o) => o.key), ['b/1']);
  assert.equal(page.nextMarker, 'b/1');
  assert.deepEqual((await s.list('b/', page.nextMarker!)).objects.map((o) => o.key), ['b/2']);
  const all: string[] = [];
  for await (const o of listAll(s, '')) all.push(o.key);
  assert.deepEqual(all, ['a/1', 'b/1', 'b/2']);
  await s.delete('nope');
  await s.deleteMany(['a/1', 'nope']);
  assert.equal(await s.head('a/1'), null);
  await assert.rejects(s.get('a/1'), /no such object/);
  s.down = true;
  await assert.rejects(s.get('b/1'), /down/);
});

test('a cold block is looked up in the disk cache once, fetched from S3 once; a warm one is a disk hit; the ledgers add up', async () => {
  const dir = tempDir('tierfs-layers-');
  const store = new MemoryObjectStore();
  const slices = new MemorySliceStore();
  const ids = new MemoryChunkIdAllocator();
  const writer = adaptor(store, slices, ids);
  const disk = await DiskCache.open({ dir: dir.path, capacityBytes: 64 * 2 ** 20, store, fsync: false });
  try {
    const size = 8 * BLOCK;
    const data = Buffer.alloc(size);
    for (let i = 0; i < size; i++) data[i] = (i * 7) & 0xff;
    await writer.write(1, 0, data);
    await writer.flush(1);
    writer.checkInvariants();

    const reader = adaptor(store, slices, ids, { diskCache: disk, readaheadBlocks: 0, readCacheBytes: 1 });
    // One read per block: each misses memory (1-byte LRU) and the disk, and is fetched from S3.
    for (let b = 0; b < 8; b++) assert.ok((await reader.read(1, b * BLOCK, BLOCK, size)).equals(data.subarray(b * BLOCK, (b + 1) * BLOCK)));
    let st = reader.stats();
    assert.equal(st.read.s3Fetches, 8);
    assert.equal(st.disk!.misses, 8, 'one disk lookup per cold block, not two');
    assert.equal(st.disk!.hits, 0);
    assert.equal(store.ops.get, 8);
    // Admission to the disk cache is asynchronous: wait until every block is there.
    for (let i = 0; i < 100 && disk.stats().files < 8; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(disk.stats().files, 8);
    for (let b = 0; b < 8; b++) await reader.read(1, b * BLOCK, BLOCK, size);
    st = reader.stats();
    assert.equal(st.read.s3Fetches, 8, 'warm: no S3');
    assert.equal(st.read.diskHits, 8);
    assert.equal(st.disk!.hits, 8);
    assert.equal(st.disk!.hitRatio, 0.5);
    assert.equal(st.read.lookups, st.read.memHits + st.read.memMisses);
    assert.equal(st.read.memMisses, st.read.diskHits + st.read.s3Fetches + st.read.joined + st.read.failed);
    reader.checkInvariants();
    await reader.close();
  } finally {
    await writer.close();
    await disk.close();
    dir.remove();
  }
});

test('concurrent readers of one cold block share one GET (joined), and the ledger counts each reader once', async () => {
  const store = new MemoryObjectStore();
  const slices = new MemorySliceStore();
  const ids = new MemoryChunkIdAllocator();
  const writer = adaptor(store, slices, ids);
  await writer.write(2, 0, Buffer.alloc(BLOCK, 5));
  await writer.flush(2);
  store.latencyMs = 20;
  const reader = adaptor(store, slices, ids, { readaheadBlocks: 0 });
  const reads = await Promise.all(Array.from({ length: 6 }, () => reader.read(2, 0, BLOCK, BLOCK)));
  assert.ok(reads.every((r) => r.every((b) => b === 5)));
  const st = reader.stats().read;
  assert.equal(store.ops.get, 1);
  assert.equal(st.s3Fetches, 1);
  assert.equal(st.joined, 5);
  assert.equal(st.lookups, 6);
  reader.checkInvariants();
  await reader.close();
  await writer.close();
});

test('the write buffer memory count equals the buffered bytes throughout writes, flushes and truncates', async () => {
  const store = new MemoryObjectStore();
  store.latencyMs = 2;
  const a = adaptor(store, new MemorySliceStore(), new MemoryChunkIdAllocator(), { memBudgetBytes: 8 * BLOCK });
  try {
    const writes: Array<Promise<void>> = [];
    for (let i = 0; i < 40; i++) writes.push(a.write(1 + (i % 3), i * 5000, Buffer.alloc(7000, i)));
    const checker = setInterval(() => a.checkInvariants(), 1);
    await Promise.all(writes);
    await a.truncate(1, 300_000, 10_000);
    await Promise.all([a.flush(1), a.flush(2), a.flush(3)]);
    clearInterval(checker);
    a.checkInvariants();
    assert.equal(a.stats().memUsedBytes, 0);
  } finally {
    await a.close();
  }
});

test('a block object still missing (another mount\'s --writeback upload) is waited for up to the S3 timeout, then EIO, never ENOENT or zeros', async () => {
  const store = new MemoryObjectStore();
  const slices = new MemorySliceStore();
  const ids = new MemoryChunkIdAllocator();
  const writer = adaptor(store, slices, ids);
  const data = Buffer.alloc(2 * BLOCK, 0x5a);
  await writer.write(1, 0, data);
  await writer.flush(1);
  const keys: string[] = [];
  for await (const o of listAll(store, '')) keys.push(o.key);
  const saved = new Map<string, Buffer>();
  for (const k of keys) saved.set(k, await store.get(k));
  await store.deleteMany(keys);

  const reader = adaptor(store, slices, ids, { s3TimeoutMs: 400, readaheadBlocks: 0 });
  const t0 = Date.now();
  await assert.rejects(reader.read(1, 0, BLOCK, data.length), (err: unknown) => (err as { code?: string }).code === 'UNAVAILABLE');
  assert.ok(Date.now() - t0 >= 350, 'it waited for the upload');
  // The upload lands while a reader waits: the read returns the bytes.
  const late = reader.read(1, BLOCK, BLOCK, data.length);
  setTimeout(() => void Promise.all([...saved].map(([k, v]) => store.put(k, v))), 100);
  assert.ok((await late).equals(data.subarray(BLOCK)));
  await writer.close();
  await reader.close();
});
