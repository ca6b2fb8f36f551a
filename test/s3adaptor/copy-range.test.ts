// copy_file_range by reference against a real s3rver: the copy moves no byte and makes no S3
// request, reads equal the source, and no path that deletes objects (trash, shadowed drops,
// compaction, truncate, fsck's GC) deletes objects the other side still reads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StatusCode, TierfsError } from '../../common/status.js';
import { S3Adaptor, type S3AdaptorOptions } from '../../s3adaptor/adaptor.js';
import { fsck, type FsckMeta } from '../../s3adaptor/fsck.js';
import { parseBlockKey } from '../../s3adaptor/keys.js';
import { objectPieces } from '../../s3adaptor/layout.js';
import { MemoryChunkIdAllocator, MemorySliceStore } from '../../s3adaptor/memory-slice-store.js';
import { listAll, type ObjectStore } from '../../s3adaptor/object-store.js';
import type { Slice } from '../../s3adaptor/types.js';
import { inodeObjectKeys } from '../../metaserver/s3-deleter.js';
import { useMemoryStore } from './fixture.js';
import { rng } from './rng.js';

const KiB = 1024;
const FS = 21;
const CHUNK = 64 * KiB;
const BLOCK = 16 * KiB;
let store: ObjectStore;
const ids = new MemoryChunkIdAllocator();

useMemoryStore((s) => {
  store = s;
});

function adaptor(slices: MemorySliceStore, extra: Partial<S3AdaptorOptions> = {}): S3Adaptor {
  return new S3Adaptor({ fsId: FS, chunkSize: CHUNK, blockSize: BLOCK, objectStore: store, sliceStore: slices, chunkIds: ids, ...extra });
}

async function objectKeys(fsId = FS): Promise<string[]> {
  const out: string[] = [];
  for await (const o of listAll(store, '')) if (parseBlockKey(o.key)?.fsId === fsId) out.push(o.key);
  return out.sort();
}

/** Reads through a new adaptor (no cached slices or blocks): what another mount would see, straight from S3. */
async function readFresh(slices: MemorySliceStore, ino: number, size: number): Promise<Buffer> {
  const a = adaptor(slices);
  try {
    return await a.read(ino, 0, size, size);
  } finally {
    await a.close();
  }
}

async function writeFlushed(a: S3Adaptor, ino: number, offset: number, data: Buffer): Promise<void> {
  await a.write(ino, offset, data);
  await a.flush(ino);
}

const requests = () => store.stats().requests;

test('a reference slice reads a sub-range of another slice at any shift (layout)', () => {
  // Owner wrote [5000, 60000) of its chunk: objects [5000,16K) [16K,32K) [32K,48K) [48K,60000).
  const ref: Slice = { chunkId: 9, compaction: 0, offset: 100, len: 20_000, size: 20_000, zero: false, ref: { ino: 3, chunkIndex: 2, chunkId: 4, compaction: 1, offset: 5000, len: 55_000, pos: 10_000 } };
  const pieces = objectPieces(ref, 100, 20_100, BLOCK);
  assert.deepEqual(pieces, [
    { blockIndex: 0, objectSize: 16 * KiB - 5000, from: 5000, chunkPos: 100, len: 16 * KiB - 10_000 },
    { blockIndex: 1, objectSize: 16 * KiB, from: 0, chunkPos: 100 + 16 * KiB - 10_000, len: 20_000 - (16 * KiB - 10_000) },
  ]);
});

test('an aligned copy references the source: no object written, no S3 request, data equal; later writes to either side stay on their side', async () => {
  const slices = new MemorySliceStore();
  const a = adaptor(slices);
  const r = rng(1);
  const size = 3 * CHUNK;
  const data = r.bytes(size);
  try {
    await writeFlushed(a, 10, 0, data);
    const before = await objectKeys();
    const req = requests();
    assert.equal(await a.copyRange(10, 0, 11, 0, size, size), size);
    assert.equal(requests(), req, 'the copy itself makes no S3 request');
    assert.deepEqual(await objectKeys(), before, 'no object added');
    assert.ok((await a.read(11, 0, size, size)).equals(data));
    assert.ok((await readFresh(slices, 11, size)).equals(data), 'another mount reads the copy from the source objects');
    assert.equal(a.stats().copiedBytes, size);

    // Write to the copy: the source is unchanged, and the reverse.
    const dstPatch = r.bytes(20 * KiB);
    await writeFlushed(a, 11, 30 * KiB, dstPatch);
    const srcPatch = r.bytes(40 * KiB);
    await writeFlushed(a, 10, 100 * KiB, srcPatch);
    const wantSrc = Buffer.from(data);
    srcPatch.copy(wantSrc, 100 * KiB);
    const wantDst = Buffer.from(data);
    dstPatch.copy(wantDst, 30 * KiB);
    await a.close();
    assert.ok((await readFresh(slices, 10, size)).equals(wantSrc), 'source sees only its own write');
    assert.ok((await readFresh(slices, 11, size)).equals(wantDst), 'copy sees only its own write');
  } finally {
    await a.close();
  }
});

test('an unaligned copy across chunk boundaries, over holes and older destination data, equals the source range', async () => {
  const slices = new MemorySliceStore();
  const a = adaptor(slices);
  const r = rng(2);
  const srcSize = 4 * CHUNK;
  const src = Buffer.alloc(srcSize);
  try {
    // Several overlapping slices and a hole in [150K, 170K).
    for (const [off, len] of [[0, 150 * KiB], [3000, 7000], [70 * KiB, 33 * KiB + 17], [170 * KiB, srcSize - 170 * KiB], [200 * KiB + 5, 999]] as const) {
      const d = r.bytes(len);
      d.copy(src, off);
      await writeFlushed(a, 20, off, d);
    }
    const dstOld = r.bytes(3 * CHUNK);
    await writeFlushed(a, 21, 0, dstOld);
    await a.write(20, 250 * KiB, Buffer.alloc(10, 7)); // buffered source data is flushed by the copy
    Buffer.alloc(10, 7).copy(src, 250 * KiB);
    const puts = store.stats().bytesPut;
    const srcOff = 5001;
    const dstOff = 70_003;
    const len = 190 * KiB + 11;
    const putsBefore = store.stats().bytesPut;
    assert.equal(await a.copyRange(20, srcOff, 21, dstOff, len, srcSize), len);
    assert.ok(store.stats().bytesPut - putsBefore <= 10, 'only the buffered 10 bytes were written (by their flush)');
    assert.ok(puts >= 0);
    const want = Buffer.alloc(Math.max(dstOld.length, dstOff + len));
    dstOld.copy(want);
    src.copy(want, dstOff, srcOff, srcOff + len);
    assert.ok((await a.read(21, 0, want.length, want.length)).equals(want));
    await a.close();
    assert.ok((await readFresh(slices, 21, want.length)).equals(want), 'holes mask older destination data');
    // A copy past the source's end is short; at the end it is 0.
    const b = adaptor(slices);
    assert.equal(await b.copyRange(20, srcSize - 100, 22, 0, 1000, srcSize), 100);
    assert.equal(await b.copyRange(20, srcSize, 22, 0, 1000, srcSize), 0);
    await b.close();
  } finally {
    await a.close();
  }
});

test('a copy of a copy points at the original objects; deleting the middle file loses nothing', async () => {
  const slices = new MemorySliceStore();
  const a = adaptor(slices);
  const data = rng(3).bytes(2 * CHUNK);
  try {
    await writeFlushed(a, 30, 0, data);
    await a.copyRange(30, 0, 31, 0, data.length, data.length);
    await a.copyRange(31, 1000, 32, 0, data.length - 1000, data.length);
    for (const list of (await slices.getSlices(32)).values()) for (const s of list) if (!s.zero) assert.equal(s.ref?.ino, 30);
    await a.deleteObjects(31, await slices.getSlices(31));
    slices.drop(31);
    await a.close();
    assert.ok((await readFresh(slices, 32, data.length - 1000)).equals(data.subarray(1000)));
  } finally {
    await a.close();
  }
});

test('copying onto an overlapping range of the same file is INVALID_ARGUMENT; a disjoint one works', async () => {
  const slices = new MemorySliceStore();
  const a = adaptor(slices);
  const data = rng(4).bytes(CHUNK);
  try {
    await writeFlushed(a, 40, 0, data);
    await assert.rejects(a.copyRange(40, 0, 40, 100, 1000, CHUNK), (e: unknown) => e instanceof TierfsError && e.code === StatusCode.INVALID_ARGUMENT);
    await a.copyRange(40, 0, 40, 2 * CHUNK + 7, CHUNK, CHUNK);
    const size = 3 * CHUNK + 7;
    // The source range is overwritten afterwards; the copy must keep the old bytes.
    await writeFlushed(a, 40, 0, Buffer.alloc(CHUNK, 0xee));
    await a.close();
    assert.ok((await readFresh(slices, 40, size)).subarray(2 * CHUNK + 7).equals(data));
  } finally {
    await a.close();
  }
});

/** The source goes away in every way objects get deleted; the copy stays whole, read from S3. */
test('deleting, overwriting, truncating and compacting either side leaves the other fully readable', async () => {
  const slices = new MemorySliceStore();
  const a = adaptor(slices, { compactThreshold: 0 });
  const r = rng(5);
  const size = 2 * CHUNK + 5000;
  const data = r.bytes(size);
  try {
    // Source in several slices per chunk, so compaction has something to merge.
    for (let off = 0; off < size; off += 24 * KiB) await writeFlushed(a, 50, off, data.subarray(off, Math.min(size, off + 24 * KiB)));
    await a.copyRange(50, 0, 51, 0, size, size);
    await a.copyRange(50, 0, 52, 0, size, size);
    for (const list of (await slices.getSlices(50)).values()) for (const s of list) assert.ok(s.shared, 'every referenced source slice is marked shared');

    // Source: compacted (merged into new objects), overwritten (shadowed slices dropped), truncated.
    assert.equal(await a.compact(50, 0, true), 'compacted');
    await writeFlushed(a, 50, CHUNK, r.bytes(CHUNK));
    await a.truncate(50, size, 10);
    await a.compact(50, 2, true);
    await a.close();
    const b = adaptor(slices, { compactThreshold: 0 });
    // Then its trash job runs and the inode goes.
    await b.deleteObjects(50, await slices.getSlices(50));
    slices.drop(50);
    assert.ok((await readFresh(slices, 51, size)).equals(data), 'copy 1 intact');

    // Copy 1 is compacted into objects of its own, truncated and deleted: copy 2 still reads the shared objects.
    assert.equal(await b.compact(51, 1, true), 'compacted', 'references merged into objects of its own');
    await writeFlushed(b, 51, 100, Buffer.alloc(100, 1));
    assert.equal(await b.compact(51, 0, true), 'compacted');
    await b.truncate(51, size, 0);
    await b.deleteObjects(51, await slices.getSlices(51));
    slices.drop(51);
    await b.close();
    assert.ok((await readFresh(slices, 52, size)).equals(data), 'copy 2 intact');
  } finally {
    await a.close();
  }
});

test('a compaction or drop planned before the slices were shared fails instead of deleting them', async () => {
  const slices = new MemorySliceStore();
  const a = adaptor(slices);
  try {
    await writeFlushed(a, 60, 0, Buffer.alloc(10 * KiB, 1));
    const stale = (await slices.getSlices(60)).get(0)!;
    await a.copyRange(60, 0, 61, 0, 10 * KiB, 10 * KiB);
    await assert.rejects(slices.replaceSlices(60, 0, stale, []), (e: unknown) => e instanceof TierfsError && e.code === StatusCode.TX_CONFLICT);
  } finally {
    await a.close();
  }
});

test('the metaserver trash deleter skips references and shared slices', () => {
  const own: Slice = { chunkId: 1, compaction: 0, offset: 0, len: BLOCK, size: BLOCK, zero: false };
  const shared: Slice = { ...own, chunkId: 2, shared: true };
  const ref: Slice = { ...own, chunkId: 3, ref: { ino: 9, chunkIndex: 0, chunkId: 2, compaction: 0, offset: 0, len: BLOCK, pos: 0 } };
  const keys = inodeObjectKeys(FS, 70, new Map([[0, [own, shared, ref]]]), BLOCK, CHUNK);
  assert.equal(keys.length, 1);
  assert.equal(parseBlockKey(keys[0]!)?.chunkId, 1);
});

test('fsck counts references: shared objects of a deleted source are neither leaked nor deleted; once unreferenced they are', async () => {
  const slices = new MemorySliceStore();
  const GC_FS = FS + 1; // fsck sees the whole filesystem: one of its own
  const a = adaptor(slices, { fsId: GC_FS });
  const data = rng(6).bytes(CHUNK + 100);
  await writeFlushed(a, 80, 0, data);
  await a.copyRange(80, 0, 81, 0, data.length, data.length);
  await a.deleteObjects(80, await slices.getSlices(80));
  slices.drop(80);
  await a.close();
  const shared = await objectKeys(GC_FS);
  assert.ok(shared.length > 0 && shared.every((k) => parseBlockKey(k)!.ino === 80), 'the shared objects are named after the deleted source');
  const entries = [{ name: 'copy', ino: 81, type: 0o100000 }];
  const meta: FsckMeta = {
    listDentries: async (parent, last) => (parent === 1 ? entries.filter((d) => d.name > last) : []),
    getInode: async (ino) => {
      if (ino === 81 && entries.length > 0) return { ino, mode: 0o100644 };
      throw new TierfsError(StatusCode.NOT_FOUND, `no inode ${ino}`);
    },
    getSlices: (ino) => slices.getSlices(ino),
  };
  const opts = { fsId: GC_FS, chunkSize: CHUNK, blockSize: BLOCK, store, meta, minAgeMs: 0, deleteLeaked: true };
  const report = await fsck(opts);
  assert.equal(report.missingObjects, 0);
  assert.equal(report.leakedObjects, 0);
  assert.equal(report.deletedObjects, 0);
  assert.equal(report.referencedObjects, shared.length);
  assert.deepEqual(await objectKeys(GC_FS), shared);
  const reader = adaptor(slices, { fsId: GC_FS });
  assert.ok((await reader.read(81, 0, data.length, data.length)).equals(data));
  await reader.close();
  // The copy goes too: now nothing reads them, and fsck's GC reclaims them.
  entries.length = 0;
  slices.drop(81);
  const gc = await fsck(opts);
  assert.equal(gc.leakedObjects, shared.length);
  assert.equal(gc.deletedObjects, shared.length);
  assert.deepEqual(await objectKeys(GC_FS), []);
});

test('a 1 GiB aligned copy with the default layout moves nothing and costs no S3 request', async () => {
  // The source's slices are committed without objects (no reads happen, so none are needed):
  // a store that fails every request proves the copy never touches S3.
  const slices = new MemorySliceStore();
  const GiB = 2 ** 30;
  const chunk = 64 * 2 ** 20;
  const srcSlices = new Map<number, Slice[]>();
  let id = 1;
  for (let idx = 0; idx < GiB / chunk; idx++) {
    srcSlices.set(idx, [
      { chunkId: id++, compaction: 0, offset: 0, len: chunk / 2, size: chunk / 2, zero: false },
      { chunkId: id++, compaction: 0, offset: chunk / 2, len: chunk / 2, size: chunk / 2, zero: false },
    ]);
  }
  await slices.appendSlices(90, srcSlices);
  const failing: ObjectStore = new Proxy(store, {
    get: (t, p) => (p === 'stats' ? () => t.stats() : () => Promise.reject(new Error(`S3 ${String(p)} during a reference copy`))),
  });
  const a = new S3Adaptor({ fsId: FS, chunkSize: chunk, blockSize: 4 * 2 ** 20, objectStore: failing, sliceStore: slices, chunkIds: ids });
  try {
    const t0 = performance.now();
    assert.equal(await a.copyRange(90, 0, 91, 0, GiB, GiB), GiB);
    const ms = performance.now() - t0;
    assert.ok(ms < 1000, `took ${ms.toFixed(0)} ms`);
    assert.equal(await a.allocatedBytes(91), GiB);
    assert.equal([...(await slices.getSlices(91)).values()].flat().length, 32);
  } finally {
    await a.close();
  }
});

test('fsck --delete-leaked spares objects a copy started reading during its walk (confirmation walk)', async () => {
  const slices = new MemorySliceStore();
  const FS3 = FS + 2;
  const a = adaptor(slices, { fsId: FS3 });
  const data = rng(7).bytes(40 * KiB);
  await writeFlushed(a, 100, 0, data);
  await a.copyRange(100, 0, 101, 0, data.length, data.length);
  await a.deleteObjects(100, await slices.getSlices(100));
  slices.drop(100);
  await a.close();
  const keys = await objectKeys(FS3);
  // The first walk reaches the copy before its references commit (it sees no slices), and the
  // source after it dropped them: the objects look leaked until the confirmation walk.
  let walks = 0;
  const meta: FsckMeta = {
    listDentries: async (parent, last) => (parent === 1 && last === '' ? [{ name: 'copy', ino: 101, type: 0o100000 }] : []),
    getInode: async (ino) => {
      throw new TierfsError(StatusCode.NOT_FOUND, `no inode ${ino}`);
    },
    getSlices: async (ino) => (ino === 101 && walks++ === 0 ? new Map() : slices.getSlices(ino)),
  };
  const report = await fsck({ fsId: FS3, chunkSize: CHUNK, blockSize: BLOCK, store, meta, minAgeMs: 0, deleteLeaked: true });
  assert.equal(report.deletedObjects, 0);
  assert.equal(report.leakedObjects, 0);
  assert.deepEqual(await objectKeys(FS3), keys);
});
