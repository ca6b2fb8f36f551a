// O_APPEND runs through the data path against a real s3rver: runs from two adaptors (two
// mounts) land whole at the end whatever each one guessed, read back equal from a fresh
// adaptor, survive compaction, and own their objects — deleted with them, never while a
// copy by reference still reads them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StatusCode, TierfsError } from '../../common/status.js';
import { S3Adaptor, type S3AdaptorOptions } from '../../s3adaptor/adaptor.js';
import { appendPieces } from '../../s3adaptor/append-layout.js';
import { sliceKeys } from '../../s3adaptor/compaction.js';
import { parseBlockKey } from '../../s3adaptor/keys.js';
import { MemoryChunkIdAllocator, MemorySliceStore } from '../../s3adaptor/memory-slice-store.js';
import { listAll, type ObjectStore } from '../../s3adaptor/object-store.js';
import type { AppendPlaced, AppendRunRequest } from '../../s3adaptor/types.js';
import { useS3Store } from './fixture.js';
import { rng } from './rng.js';

const KiB = 1024;
const FS = 23;
const CHUNK = 64 * KiB;
const BLOCK = 16 * KiB;
let store: ObjectStore;
const ids = new MemoryChunkIdAllocator();

useS3Store('append/', (s) => {
  store = s;
});

/** The metaserver's placement (apply-append.ts) over the in-memory slice store, with file sizes. */
class SizedSliceStore extends MemorySliceStore {
  readonly sizes = new Map<number, number>();

  async appendRun(ino: number, run: AppendRunRequest): Promise<AppendPlaced> {
    const base = this.sizes.get(ino) ?? 0;
    const pieces = appendPieces(ino, base, run);
    const cur = await this.getSlices(ino);
    for (const [idx, [p]] of pieces) {
      if ((cur.get(idx) ?? []).some((s) => s.chunkId >= p!.chunkId && s.offset < p!.offset + p!.len && s.offset + s.len > p!.offset)) {
        throw new TierfsError(StatusCode.TX_CONFLICT, 'a newer slice in the way');
      }
    }
    await this.appendSlices(ino, pieces);
    this.sizes.set(ino, base + run.len);
    return { base };
  }
}

function adaptor(slices: MemorySliceStore, extra: Partial<S3AdaptorOptions> = {}): S3Adaptor {
  return new S3Adaptor({ fsId: FS, chunkSize: CHUNK, blockSize: BLOCK, objectStore: store, sliceStore: slices, chunkIds: ids, compactThreshold: 0, ...extra });
}

async function objectKeys(ino: number): Promise<string[]> {
  const out: string[] = [];
  for await (const o of listAll(store, '')) {
    const k = parseBlockKey(o.key);
    if (k?.fsId === FS && k.ino === ino) out.push(o.key);
  }
  return out.sort();
}

async function readFresh(slices: MemorySliceStore, ino: number, size: number): Promise<Buffer> {
  const a = adaptor(slices);
  try {
    return await a.read(ino, 0, size, size);
  } finally {
    await a.close();
  }
}

const times = { mtimeMs: 1, ctimeMs: 1 };

test('runs from two mounts land whole, one after the other, whatever each guessed; across chunk ends', async () => {
  const slices = new SizedSliceStore();
  const m1 = adaptor(slices);
  const m2 = adaptor(slices);
  const r = rng(7);
  const ino = 40;
  const expected: Buffer[] = [];
  try {
    for (let i = 0; i < 24; i++) {
      const run = r.bytes(1 + Math.floor(r.next() * 20 * KiB));
      const m = i % 3 === 0 ? m2 : m1;
      // Each mount guesses the end from what it wrote itself: wrong as soon as the other appended.
      const placed = await m.appendAtEnd(ino, run, times, i % 3 === 0 ? 0 : 12_345 * i);
      assert.equal(placed.base, expected.reduce((n, b) => n + b.length, 0));
      expected.push(run);
    }
    const all = Buffer.concat(expected);
    assert.ok(all.length > 3 * CHUNK);
    assert.equal(slices.sizes.get(ino), all.length);
    assert.ok((await readFresh(slices, ino, all.length)).equals(all), 'a fresh mount reads every run where it landed');
    // A mount's slice map lacks the other's runs until dropped: the gateway drops it when the
    // inode its commit returned shows another mount's change (gateway/coherence.ts).
    m1.invalidate(ino);
    assert.ok((await m1.read(ino, 0, all.length, all.length)).equals(all), 'and so does a mount that appended, once its slice map is dropped');
    // Compaction merges the runs of a chunk into objects of its own and deletes the runs' objects.
    const before = await objectKeys(ino);
    // Pieces cut off their objects' grid are shared: their objects stay (for fsck's GC).
    const kept = new Set<string>();
    for (const [idx, list] of await slices.getSlices(ino)) {
      for (const s of list) if (s.shared) for (const k of sliceKeys(FS, ino, idx, s, BLOCK, CHUNK)) kept.add(k);
    }
    assert.ok(kept.size < before.length / 4, `most runs own their objects (${kept.size} of ${before.length} shared)`);
    for (const idx of (await slices.getSlices(ino)).keys()) await m1.compact(ino, idx, true);
    assert.ok((await readFresh(slices, ino, all.length)).equals(all), 'equal after compaction');
    assert.deepEqual((await objectKeys(ino)).filter((k) => before.includes(k)), [...kept].map((k) => k).sort(), 'the runs\' own objects went with them');
    // Deleting the file deletes what it owns.
    await m1.deleteObjects(ino, await slices.getSlices(ino));
    assert.deepEqual(await objectKeys(ino), [...kept].sort());
  } finally {
    await m1.close();
    await m2.close();
  }
});

test('a run ordered below a newer slice past the end (a truncate by another mount) takes a newer id and reads back', async () => {
  const slices = new SizedSliceStore();
  const a = adaptor(slices);
  const ino = 41;
  try {
    await a.appendAtEnd(ino, Buffer.from('hello '), times, 0);
    // Another mount's truncate mask past the end with an id far above this mount's batch.
    const { start } = await ids.allocate(5000);
    await slices.appendSlices(ino, new Map([[0, [{ chunkId: start + 4999, compaction: 0, offset: 6, len: CHUNK - 6, size: 0, zero: true }]]]));
    const placed = await a.appendAtEnd(ino, Buffer.from('world'), times, 6);
    assert.equal(placed.base, 6);
    assert.equal((await readFresh(slices, ino, 11)).toString(), 'hello world');
    assert.equal((await a.read(ino, 0, 11, 11)).toString(), 'hello world');
  } finally {
    await a.close();
  }
});

test('a copy by reference of appended data marks the runs shared: deleting the source leaves what the copy reads', async () => {
  const slices = new SizedSliceStore();
  const a = adaptor(slices);
  const src = 42;
  const dst = 43;
  const data = rng(3).bytes(40 * KiB);
  try {
    await a.appendAtEnd(src, data.subarray(0, 25 * KiB), times, 0);
    await a.appendAtEnd(src, data.subarray(25 * KiB), times, 25 * KiB);
    assert.equal(await a.copyRange(src, 0, dst, 0, data.length, data.length), data.length);
    assert.ok([...(await slices.getSlices(src)).values()].flat().every((s) => s.shared), 'the runs are shared now');
    await a.deleteObjects(src, await slices.getSlices(src));
    slices.drop(src);
    assert.ok((await readFresh(slices, dst, data.length)).equals(data));
  } finally {
    await a.close();
  }
});

test('the pieces of a run: cut at chunk ends, owned unless a cut splits one of its objects', () => {
  const run = { chunkId: 9, len: 3 * CHUNK, ownerChunkId: 9, ownerOffset: 100, chunkSize: CHUNK, blockSize: BLOCK };
  const onGrid = appendPieces(5, CHUNK + 100, run);
  assert.deepEqual([...onGrid.keys()], [1, 2, 3, 4]);
  assert.deepEqual([...onGrid.values()].map(([s]) => [s!.offset, s!.len, s!.ref!.pos, !!s!.shared]), [
    [100, CHUNK - 100, 100, false], [0, CHUNK, CHUNK, false], [0, CHUNK, 2 * CHUNK, false], [0, 100, 3 * CHUNK, false],
  ]);
  const offGrid = appendPieces(5, CHUNK + 101, run);
  assert.ok([...offGrid.values()].every(([s]) => s!.shared && s!.refOwned));
  const whole = appendPieces(5, 10, { ...run, len: 50 });
  assert.deepEqual([...whole.values()].map(([s]) => [s!.offset, s!.len, !!s!.shared]), [[10, 50, false]]);
});
