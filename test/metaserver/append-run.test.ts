// The state machine's part of close-to-open and O_APPEND across mounts: the data version
// bumped by every change of data or size (and only those), sizes that writes only grow, and
// an append run placed at the end of the file inside its own entry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Level } from 'level';
import { MetaStateMachine } from '../../metaserver/state-machine.js';
import { MetaReader } from '../../metaserver/state-reader.js';
import { UpdateMask, type AppendRunOp, type MetaOp, type OpResult } from '../../metaserver/records.js';
import { S_IFDIR, S_IFREG } from '../../metaserver/meta-client.js';
import { inodeObjectKeys } from '../../metaserver/s3-deleter.js';
import { appendPieces } from '../../s3adaptor/append-layout.js';
import { tempDir } from '../support/tmp.js';

async function withSm(fn: (r: MetaReader, apply: (op: MetaOp) => Promise<OpResult>) => Promise<void>) {
  const tmp = tempDir('tierfs-append-');
  const db = new Level<string, string>(join(tmp.path, 'db'));
  await db.open();
  const sm = await new MetaStateMachine(db, 1, 7).load();
  let index = 0;
  const apply = async (op: MetaOp) => (await sm.apply([{ index: ++index, term: 1, data: Buffer.from(JSON.stringify(op)) }]))[0] as OpResult;
  try {
    await apply({ op: 'createPartition', partition: { fsId: 1, poolId: 1, copysetId: 7, partitionId: 1, start: 1, end: 100 }, now: 1 });
    await apply({ op: 'createInode', pid: 1, mode: S_IFREG | 0o644, uid: 0, gid: 0, rdev: 0, symlink: '', parent: 1, now: 5 }); // ino 2
    await fn(new MetaReader(sm), apply);
  } finally {
    await db.close();
    tmp.remove();
  }
}

const CS = 4096;
const BS = 1024;
const run = (chunkId: number, len: number, ownerOffset = 0): AppendRunOp => ({
  chunkId, len, ownerChunkId: chunkId, ownerOffset, chunkSize: CS, blockSize: BS, mtimeMs: 77, ctimeMs: 78,
});
const slice = (chunkId: number, offset: number, len: number, zero = false) => ({ chunkId, compaction: 0, offset, len, size: zero ? 0 : len, zero });
const changes = (size: number, grow = false) => ({
  mask: UpdateMask.SIZE, mode: 0, uid: 0, gid: 0, size, atimeMs: 0, mtimeMs: 0, ctimeMs: 0, nlinkDelta: 0, addParent: 0, removeParent: 0, touchCtime: false,
  ...(grow ? { sizeGrowOnly: true } : {}),
});

test('the data version moves with every change of data or size, and only with those', async () => {
  await withSm(async (r, apply) => {
    const v = async () => (await r.inode(1, 2)).dataVersion ?? 0;
    assert.equal(await v(), 0);
    await apply({ op: 'modifySlices', pid: 1, ino: 2, append: [[0, [slice(10, 0, 100)]]], replace: null });
    assert.equal(await v(), 1, 'slices appended');
    await apply({ op: 'modifySlices', pid: 1, ino: 2, append: [[0, [slice(11, 100, 10)]]], replace: null, attrs: { size: 110, mtimeMs: 9, ctimeMs: 9 } });
    assert.equal(await v(), 2, 'slices with size (a close)');
    await apply({ op: 'updateInode', pid: 1, ino: 2, changes: changes(50), now: 10 });
    assert.equal(await v(), 3, 'truncate');
    await apply({ op: 'updateInode', pid: 1, ino: 2, changes: { ...changes(0), mask: UpdateMask.MTIME | UpdateMask.MODE, mode: 0o600 }, now: 10 });
    await apply({ op: 'setXattr', pid: 1, ino: 2, name: 'user.x', value: '', flags: 0, now: 11 });
    await apply({ op: 'modifySlices', pid: 1, ino: 2, append: [], replace: { chunkIndex: 0, removed: [slice(10, 0, 100)], added: [{ ...slice(10, 0, 100), shared: true }] } });
    assert.equal(await v(), 3, 'times, mode, xattrs and a slice swap (compaction, sharing) leave the data as it was');
    const placed = await apply({ op: 'appendRun', pid: 1, ino: 2, run: run(20, 10) });
    assert.equal(placed.inode?.dataVersion, 4, 'an append run');
  });
});

test('sizes that writes commit only grow; a truncate sets the size exactly', async () => {
  await withSm(async (r, apply) => {
    await apply({ op: 'updateInode', pid: 1, ino: 2, changes: changes(1000), now: 1 });
    // Another mount wrote up to 1000; this one wrote up to 600 and closes last.
    await apply({ op: 'modifySlices', pid: 1, ino: 2, append: [[0, [slice(30, 500, 100)]]], replace: null, attrs: { size: 600, mtimeMs: 2, ctimeMs: 2, growOnly: true } });
    assert.equal((await r.inode(1, 2)).size, 1000);
    await apply({ op: 'updateInode', pid: 1, ino: 2, changes: changes(700, true), now: 3 });
    assert.equal((await r.inode(1, 2)).size, 1000);
    await apply({ op: 'updateInode', pid: 1, ino: 2, changes: changes(1200, true), now: 4 });
    assert.equal((await r.inode(1, 2)).size, 1200);
    await apply({ op: 'updateInode', pid: 1, ino: 2, changes: changes(10), now: 5 });
    assert.equal((await r.inode(1, 2)).size, 10, 'truncate');
  });
});

test('append runs land at the end as the entry finds it, one after the other, cut where chunks end', async () => {
  await withSm(async (r, apply) => {
    const a = await apply({ op: 'appendRun', pid: 1, ino: 2, run: run(40, 3000) });
    assert.equal(a.appendBase, 0);
    const b = await apply({ op: 'appendRun', pid: 1, ino: 2, run: run(41, 3000, 3000 % BS) }); // guessed right: cut on the grid
    assert.equal(b.appendBase, 3000);
    const inode = await r.inode(1, 2);
    assert.deepEqual([inode.size, inode.mtimeMs, inode.ctimeMs], [6000, 77, 78]);
    assert.equal(inode.allocatedBytes, 6000, 'the st_blocks counter moves with placed runs');
    const slices = await r.slices(1, 2);
    assert.deepEqual(slices, appendPieces(2, 0, run(40, 3000)).set(0, [...appendPieces(2, 0, run(40, 3000)).get(0)!, ...appendPieces(2, 3000, run(41, 3000, 3000 % BS)).get(0)!])
      .set(1, appendPieces(2, 3000, run(41, 3000, 3000 % BS)).get(1)!));
    const cut = slices.get(1)![0]!;
    assert.deepEqual([cut.offset, cut.len, cut.ref?.pos, cut.refOwned, cut.shared], [0, 1904, 3000 % BS + 1096, true, undefined]);
    // A run cut off the objects' grid (the guess was wrong): both pieces would read one object.
    const c = await apply({ op: 'appendRun', pid: 1, ino: 2, run: run(42, 3000, 0) });
    assert.equal(c.appendBase, 6000);
    const pieces = [...(await r.slices(1, 2))].flatMap(([, l]) => l).filter((s) => s.chunkId === 42);
    assert.equal(pieces.length, 2);
    assert.ok(pieces.every((s) => s.shared && s.refOwned));
    // Deleting the file deletes the objects the runs own: not those of the shared pieces.
    const keys = inodeObjectKeys(1, 2, await r.slices(1, 2), BS, CS);
    assert.ok(keys.some((k) => k.includes('_2_40_')) && keys.some((k) => k.includes('_2_41_')));
    assert.ok(!keys.some((k) => k.includes('_2_42_')));
  });
});

test('an append run older than a slice past the end (a truncate\'s) is TX_CONFLICT and changes nothing', async () => {
  await withSm(async (r, apply) => {
    await apply({ op: 'modifySlices', pid: 1, ino: 2, append: [[0, [slice(50, 0, 100)]]], replace: null, attrs: { size: 100, mtimeMs: 1, ctimeMs: 1 } });
    await apply({ op: 'updateInode', pid: 1, ino: 2, changes: changes(40), now: 2 });
    await apply({ op: 'modifySlices', pid: 1, ino: 2, append: [[0, [slice(60, 40, CS - 40, true)]]], replace: null });
    const before = await r.inode(1, 2);
    const stale = await apply({ op: 'appendRun', pid: 1, ino: 2, run: run(55, 10) });
    assert.equal(stale.code, 'TX_CONFLICT');
    assert.deepEqual(await r.inode(1, 2), before);
    const ok = await apply({ op: 'appendRun', pid: 1, ino: 2, run: { ...run(55, 10), chunkId: 61 } });
    assert.equal(ok.appendBase, 40);
    assert.equal((await r.inode(1, 2)).size, 50);
  });
});

test('an append run into a directory or past the largest file size is refused', async () => {
  await withSm(async (_r, apply) => {
    await apply({ op: 'createInode', pid: 1, mode: S_IFDIR | 0o755, uid: 0, gid: 0, rdev: 0, symlink: '', parent: 1, now: 5 }); // ino 3
    assert.equal((await apply({ op: 'appendRun', pid: 1, ino: 3, run: run(70, 10) })).code, 'INVALID_ARGUMENT');
    await apply({ op: 'updateInode', pid: 1, ino: 2, changes: changes(Number.MAX_SAFE_INTEGER - 5), now: 1 });
    assert.equal((await apply({ op: 'appendRun', pid: 1, ino: 2, run: run(71, 10) })).code, 'INVALID_ARGUMENT');
  });
});
