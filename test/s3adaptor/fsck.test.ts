// fsck against a real s3rver: referenced objects that are gone make a file broken (named by
// path); objects of no inode are leaked once older than minAge and can be deleted; a file in
// no directory but still alive keeps its objects; hard links are checked once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { StatusCode, TierfsError } from '../../common/status.js';
import { S3Adaptor } from '../../s3adaptor/adaptor.js';
import { fsck, type FsckMeta } from '../../s3adaptor/fsck.js';
import { sliceBlockKey } from '../../s3adaptor/keys.js';
import { MemoryChunkIdAllocator, MemorySliceStore } from '../../s3adaptor/memory-slice-store.js';
import type { ObjectStore } from '../../s3adaptor/object-store.js';
import { startS3, type TestS3 } from '../support/s3.js';
import { storeFor } from './fixture.js';

const KiB = 1024;
const FS = 9;
const CHUNK = 64 * KiB;
const BLOCK = 16 * KiB;
const DIR = 0o040000;
const REG = 0o100000;
let s3: TestS3;
let store: ObjectStore;

before(async () => {
  s3 = await startS3();
  store = storeFor(s3, { keyPrefix: 'fsck/' });
});
after(async () => {
  store.close();
  await s3.close();
});

/** A tree over a MemorySliceStore: dirs map to entries; `alive` inodes answer getInode. */
function treeMeta(slices: MemorySliceStore, dirs: Map<number, Array<{ name: string; ino: number; type: number }>>, alive: Map<number, number>): FsckMeta {
  return {
    listDentries: async (parent, last, count) =>
      (dirs.get(parent) ?? []).filter((d) => d.name > last).sort((a, b) => (a.name < b.name ? -1 : 1)).slice(0, count),
    getInode: async (ino) => {
      const mode = alive.get(ino);
      if (mode === undefined) throw new TierfsError(StatusCode.NOT_FOUND, `no inode ${ino}`);
      return { ino, mode };
    },
    getSlices: (ino) => slices.getSlices(ino),
  };
}

test('fsck finds missing and leaked objects, deletes only old leaked ones', async () => {
  const slices = new MemorySliceStore();
  const a = new S3Adaptor({ fsId: FS, chunkSize: CHUNK, blockSize: BLOCK, objectStore: store, sliceStore: slices, chunkIds: new MemoryChunkIdAllocator() });
  const write = async (ino: number, bytes: number) => {
    await a.write(ino, 0, Buffer.alloc(bytes, ino));
    await a.flush(ino);
  };
  await write(10, 40 * KiB); // /a: 3 objects
  await write(11, 20 * KiB); // /d/b and /d/b2 (hard link): 2 objects
  await write(12, 10 * KiB); // unlinked while open: in no directory, still alive
  await write(13, 48 * KiB); // deleted inode whose objects stayed: leaked
  await a.close();
  await store.put('not-a-block-key', Buffer.from('x'));
  // Lose the second object of /d/b.
  // (Whichever slice holds block 1: a run of whole blocks may have been flushed on its own.)
  const slice = (await slices.getSlices(11)).get(0)!.find((sl) => sl.offset <= 16 * KiB && sl.offset + sl.len > 16 * KiB)!;
  await store.delete(sliceBlockKey(FS, 11, 0, CHUNK / BLOCK, slice, 1));

  const dirs = new Map([
    [1, [{ name: 'a', ino: 10, type: REG }, { name: 'd', ino: 20, type: DIR }]],
    [20, [{ name: 'b', ino: 11, type: REG }, { name: 'b2', ino: 11, type: REG }]],
  ]);
  const meta = treeMeta(slices, dirs, new Map([[1, DIR], [20, DIR], [10, REG], [11, REG], [12, REG]]));
  const base = { fsId: FS, chunkSize: CHUNK, blockSize: BLOCK, store, meta };

  const first = await fsck({ ...base, deleteLeaked: true }); // default minAge 1 h: nothing is old enough
  assert.equal(first.objects, 3 + 1 + 1 + 3);
  assert.equal(first.foreignObjects, 1);
  assert.deepEqual([first.directories, first.files, first.detachedFiles], [2, 2, 1], 'the hard link is one file');
  assert.equal(first.brokenFiles, 1);
  assert.deepEqual(first.missing.map((m) => [m.path, m.ino, m.expectedSize, m.foundSize]), [['/d/b', 11, 4 * KiB, null]]);
  assert.deepEqual([first.leakedObjects, first.youngUnreferenced, first.deletedObjects], [0, 3, 0]);

  const second = await fsck({ ...base, minAgeMs: 0, deleteLeaked: true });
  assert.deepEqual([second.leakedObjects, second.leakedBytes, second.deletedObjects], [3, 48 * KiB, 3]);
  assert.ok(second.leaked.every((k) => k.includes(`_${FS}_13_`)), 'only the deleted inode\'s objects');
  const third = await fsck({ ...base, minAgeMs: 0 });
  assert.deepEqual([third.objects, third.leakedObjects, third.brokenFiles], [5, 0, 1], 'deleted; the detached file kept its object');
});
