import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Level } from 'level';
import { MetaStateMachine } from '../../metaserver/state-machine.js';
import { MetaReader } from '../../metaserver/state-reader.js';
import type { MetaOp, OpResult } from '../../metaserver/records.js';
import { S_IFDIR, S_IFREG } from '../../metaserver/meta-client.js';
import { tempDir } from '../support/tmp.js';

const rid = (seq: number) => ({ clientId: 'c1', seq, lowSeq: seq });

async function withSm(fn: (sm: MetaStateMachine, db: Level<string, string>, apply: (op: MetaOp) => Promise<OpResult>) => Promise<void>) {
  const tmp = tempDir('tierfs-sm-');
  const db = new Level<string, string>(join(tmp.path, 'db'));
  await db.open();
  const sm = await new MetaStateMachine(db, 1, 7).load();
  let index = 0;
  // Settled: the tests read level itself, which an apply's batch reaches after it answered.
  const apply = async (op: MetaOp) => {
    const res = (await sm.apply([{ index: ++index, term: 1, data: Buffer.from(JSON.stringify(op)) }]))[0] as OpResult;
    await sm.store.settled();
    return res;
  };
  try {
    await fn(sm, db, apply);
  } finally {
    await db.close();
    tmp.remove();
  }
}

const part = (partitionId: number, start: number, end: number): MetaOp => ({
  op: 'createPartition', partition: { fsId: 1, poolId: 1, copysetId: 7, partitionId, start, end }, now: 1000,
});

test('the partition starting at 1 holds the root; ids come from the range; an exhausted partition turns read-only', async () => {
  await withSm(async (sm, _db, apply) => {
    assert.equal((await apply(part(1, 1, 3))).code, 'OK');
    const r = new MetaReader(sm);
    const root = await r.inode(1, 1);
    assert.equal(root.mode, S_IFDIR | 0o755);
    assert.equal(root.nlink, 2);
    const a = await apply({ op: 'createInode', pid: 1, rid: rid(1), mode: S_IFREG | 0o644, uid: 0, gid: 0, rdev: 0, symlink: '', parent: 1, now: 5 });
    assert.equal(a.inode?.ino, 2);
    const b = await apply({ op: 'createInode', pid: 1, rid: rid(2), mode: S_IFREG | 0o644, uid: 0, gid: 0, rdev: 0, symlink: '', parent: 1, now: 5 });
    assert.equal(b.inode?.ino, 3);
    assert.equal(r.partition(1).readOnly, true);
    const c = await apply({ op: 'createInode', pid: 1, rid: rid(3), mode: S_IFREG | 0o644, uid: 0, gid: 0, rdev: 0, symlink: '', parent: 1, now: 5 });
    assert.equal(c.code, 'READ_ONLY');
  });
});

test('a retried request returns the recorded result and applies once; replayed entries are skipped', async () => {
  await withSm(async (sm, db, apply) => {
    await apply(part(1, 1, 100));
    const op: MetaOp = { op: 'createInode', pid: 1, rid: rid(9), mode: S_IFREG, uid: 0, gid: 0, rdev: 0, symlink: '', parent: 1, now: 5 };
    const first = await apply(op);
    const again = await apply(op);
    assert.deepEqual(again, first);
    assert.equal(new MetaReader(sm).partition(1).nextId, 3);
    // An entry at or below the applied index is not applied again (crash replay).
    const applied = await sm.appliedIndex();
    await sm.apply([{ index: applied, term: 1, data: Buffer.from(JSON.stringify({ ...op, rid: rid(10) })) }]);
    assert.equal(new MetaReader(sm).partition(1).nextId, 3);
    const reopened = await new MetaStateMachine(db, 1, 7).load();
    assert.equal(await reopened.appliedIndex(), applied);
    assert.equal(reopened.partitions.get(1)?.nextId, 3);
  });
});

test('dentries list in byte order with paging; parent nlink and times follow subdirectories', async () => {
  await withSm(async (sm, _db, apply) => {
    await apply(part(1, 1, 100));
    for (const [i, name] of ['b', 'a', 'c', 'ab'].entries()) {
      const mode = name === 'c' ? S_IFDIR | 0o755 : S_IFREG | 0o644;
      const ino = (await apply({ op: 'createInode', pid: 1, rid: rid(i + 1), mode, uid: 0, gid: 0, rdev: 0, symlink: '', parent: 1, now: 5 })).inode!.ino;
      assert.equal((await apply({ op: 'createDentry', pid: 1, parent: 1, name, ino, type: mode & 0o170000, now: 50 + i })).code, 'OK');
    }
    const dup = await apply({ op: 'createDentry', pid: 1, parent: 1, name: 'a', ino: 99, type: S_IFREG, now: 60 });
    assert.equal(dup.code, 'EXISTS');
    const r = new MetaReader(sm);
    assert.deepEqual((await r.listDentries(1, 1, '', 0)).map((d) => d.name), ['a', 'ab', 'b', 'c']);
    assert.deepEqual((await r.listDentries(1, 1, 'ab', 2)).map((d) => d.name), ['b', 'c']);
    const root = await r.inode(1, 1);
    assert.equal(root.nlink, 3);
    assert.equal(root.mtimeMs, 53);
    assert.equal((await apply({ op: 'deleteDentry', pid: 1, parent: 1, name: 'c', expectIno: 0, now: 70 })).code, 'OK');
    assert.equal((await r.inode(1, 1)).nlink, 2);
    assert.equal(r.partition(1).dentryCount, 3);
  });
});

test('slices append and swap atomically; a swap of vanished slices is TX_CONFLICT', async () => {
  await withSm(async (sm, _db, apply) => {
    await apply(part(1, 1, 100));
    await apply({ op: 'createInode', pid: 1, mode: S_IFREG, uid: 0, gid: 0, rdev: 0, symlink: '', parent: 1, now: 5 });
    const s = (chunkId: number) => ({ chunkId, compaction: 0, offset: 0, len: 10, size: 10, zero: false });
    await apply({ op: 'modifySlices', pid: 1, ino: 2, append: [[0, [s(1), s(2)]], [3, [s(3)]]], replace: null });
    await apply({ op: 'modifySlices', pid: 1, ino: 2, append: [[0, [s(4)]]], replace: null });
    const r = new MetaReader(sm);
    assert.deepEqual((await r.slices(1, 2)).get(0)!.map((x) => x.chunkId), [1, 2, 4]);
    const merged = { ...s(5), compaction: 1 };
    assert.equal((await apply({ op: 'modifySlices', pid: 1, ino: 2, append: [], replace: { chunkIndex: 0, removed: [s(1), s(2)], added: [merged] } })).code, 'OK');
    assert.deepEqual((await r.slices(1, 2)).get(0)!.map((x) => x.chunkId), [5, 4]);
    const stale = await apply({ op: 'modifySlices', pid: 1, ino: 2, append: [], replace: { chunkIndex: 0, removed: [s(1)], added: [s(6)] } });
    assert.equal(stale.code, 'TX_CONFLICT');
    assert.deepEqual((await r.slices(1, 2)).get(0)!.map((x) => x.chunkId), [5, 4]);
  });
});

test('a snapshot restores into another state machine; the trash queue empties through purge', async () => {
  await withSm(async (sm, db, apply) => {
    await apply(part(1, 1, 100));
    await apply({ op: 'createInode', pid: 1, mode: S_IFREG, uid: 0, gid: 0, rdev: 0, symlink: '', parent: 1, now: 5 });
    await apply({ op: 'createDentry', pid: 1, parent: 1, name: 'f', ino: 2, type: S_IFREG, now: 6 });
    const snap = await sm.snapshot();
    const other = new MetaStateMachine(db, 1, 8);
    // Restoring into another copyset's prefix must refuse keys of this one.
    await assert.rejects(other.restore(snap.index, snap.term, snap.chunks));
    const snap2 = await sm.snapshot();
    await apply({ op: 'createDentry', pid: 1, parent: 1, name: 'g', ino: 2, type: S_IFREG, now: 7 });
    await sm.restore(snap2.index, snap2.term, snap2.chunks);
    const r = new MetaReader(sm);
    assert.deepEqual((await r.listDentries(1, 1, '', 0)).map((d) => d.name), ['f']);
    assert.equal(await sm.appliedIndex(), snap2.index);

    await apply({ op: 'updateInode', pid: 1, ino: 2, now: 9, changes: { mask: 0, mode: 0, uid: 0, gid: 0, size: 0, atimeMs: 0, mtimeMs: 0, ctimeMs: 0, nlinkDelta: -1, addParent: 0, removeParent: 1, touchCtime: true } });
    await apply({ op: 'releaseOrphan', pid: 1, ino: 2, now: 10 });
    assert.equal((await r.trash(10)).length, 1);
    await apply({ op: 'purgeInode', pid: 1, ino: 2 });
    assert.equal((await r.trash(10)).length, 0);
    await assert.rejects(r.inode(1, 2), /not found/);
  });
});

test('rename outcomes at the source: resolve aborts an uncommitted one for good; old outcomes are forgotten', async () => {
  await withSm(async (sm, db, apply) => {
    await apply(part(1, 1, 100));
    await apply({ op: 'createInode', pid: 1, mode: S_IFREG, uid: 0, gid: 0, rdev: 0, symlink: '', parent: 1, now: 5 });
    await apply({ op: 'createDentry', pid: 1, parent: 1, name: 'f', ino: 2, type: S_IFREG, now: 6 });
    await apply({ op: 'createPartition', partition: { fsId: 1, poolId: 1, copysetId: 7, partitionId: 2, start: 101, end: 200 }, now: 7 });
    await apply({ op: 'createInode', pid: 2, mode: S_IFDIR | 0o755, uid: 0, gid: 0, rdev: 0, symlink: '', parent: 1, now: 8 });
    const tx = {
      txId: 't1', srcPool: 1, srcCopyset: 7, srcPartition: 1, srcFs: 1, srcPeers: [], srcParent: 1, srcName: 'f', ino: 2, type: S_IFREG,
      dstPool: 1, dstCopyset: 7, dstPartition: 2, dstParent: 101, dstName: 'g', replacedIno: 0, replacedType: 0,
    };
    assert.equal((await apply({ op: 'resolveRename', pid: 1, txId: 't1', now: 10 })).committed, false);
    assert.equal((await apply({ op: 'commitRename', pid: 1, tx, now: 11 })).code, 'TX_CONFLICT');
    const t2 = { ...tx, txId: 't2' };
    assert.equal((await apply({ op: 'prepareRename', pid: 2, tx: t2, now: 12 })).code, 'OK');
    assert.equal((await apply({ op: 'commitRename', pid: 1, tx: t2, now: 13 })).committed, true);
    assert.equal((await apply({ op: 'resolveRename', pid: 1, txId: 't2', now: 14 })).committed, true);
    await apply({ op: 'finishRename', pid: 2, txId: 't2', commit: true, now: 15 });
    assert.deepEqual((await new MetaReader(sm).listDentries(2, 101, '', 0)).map((d) => d.name), ['g']);
    await apply({ op: 'forgetRenames', before: 12 });
    assert.equal(await db.get(sm.keys.txSource('t1')), undefined);
    assert.notEqual(await db.get(sm.keys.txSource('t2')), undefined);
    await apply({ op: 'forgetRenames', before: 100 });
    assert.equal(await db.get(sm.keys.txSource('t2')), undefined);
  });
});

test('createNode makes the inode and its name in one entry; a taken name or a full partition changes nothing', async () => {
  await withSm(async (sm, _db, apply) => {
    await apply(part(1, 1, 100));
    await apply({ op: 'createPartition', partition: { fsId: 1, poolId: 1, copysetId: 7, partitionId: 2, start: 101, end: 101 }, now: 7 });
    const node = (name: string, inodePid: number, mode: number, seq: number): MetaOp => ({
      op: 'createNode', pid: 1, inodePid, rid: rid(seq), parent: 1, name, mode, uid: 3, gid: 4, rdev: 0, symlink: '', now: 50 + seq,
    });
    const r = new MetaReader(sm);
    const f = await apply(node('f', 1, S_IFREG | 0o644, 1));
    assert.equal(f.code, 'OK');
    assert.equal(f.inode!.ino, 2);
    assert.deepEqual(await r.dentry(1, 1, 'f'), { parent: 1, name: 'f', ino: 2, type: S_IFREG });
    assert.equal(f.parentInode!.mtimeMs, 51);
    // A retried request gets the recorded result (it does not meet its own name as EXISTS).
    assert.deepEqual(await apply(node('f', 1, S_IFREG | 0o644, 1)), f);
    // A directory whose inode lives in the other partition of the copyset: parent nlink grows.
    const d = await apply(node('d', 2, S_IFDIR | 0o755, 2));
    assert.equal(d.inode!.ino, 101);
    assert.equal((await r.inode(2, 101)).nlink, 2);
    assert.equal(d.parentInode!.nlink, 3);
    assert.equal((await r.inode(1, 1)).nlink, 3);
    // The name is taken: EXISTS, and no inode id was used.
    assert.equal((await apply(node('f', 1, S_IFREG, 3))).code, 'EXISTS');
    assert.equal(r.partition(1).nextId, 3);
    // Partition 2 is out of ids: READ_ONLY, and the name was not created.
    assert.equal((await apply(node('g', 2, S_IFREG, 4))).code, 'READ_ONLY');
    await assert.rejects(r.dentry(1, 1, 'g'), /not found/);
    assert.equal(r.partition(1).dentryCount, 2);
    // The child's inode is found through any partition of the same filesystem in this copyset.
    assert.equal((await r.inodeIfLocal(1, 101))?.ino, 101);
    assert.equal(await r.inodeIfLocal(1, 5000), undefined);
  });
});

test('unlink, rmdir, link and rename are one entry each: names, parents, nlink and the trash change together', async () => {
  await withSm(async (sm, _db, apply) => {
    await apply(part(1, 1, 100));
    await apply(part(2, 1000, 1100)); // same copyset, another partition
    const r = new MetaReader(sm);
    const mk = async (seq: number, parent: number, name: string, mode: number, inodePid = 1) =>
      (await apply({ op: 'createNode', pid: 1, inodePid, rid: rid(seq), parent, name, mode, uid: 0, gid: 0, rdev: 0, symlink: '', now: 10 })).inode!;
    const d = await mk(1, 1, 'd', S_IFDIR | 0o755);
    const f = await mk(2, 1, 'f', S_IFREG | 0o644, 2);

    // link: the new name and nlink 2 in one entry; a directory cannot be linked.
    const linked = await apply({ op: 'linkNode', pid: 1, rid: rid(3), parent: d.ino, name: 'g', ino: f.ino, now: 20 });
    assert.equal(linked.inode?.nlink, 2);
    assert.deepEqual(linked.inode?.parents, [1, d.ino]);
    assert.equal((await r.dentry(1, d.ino, 'g')).ino, f.ino);
    assert.equal((await apply({ op: 'linkNode', pid: 1, rid: rid(4), parent: 1, name: 'dd', ino: d.ino, now: 20 })).code, 'PERMISSION_DENIED');

    // rename over a file: the replaced inode loses a link; the moved one changes parents.
    const h = await mk(5, 1, 'h', S_IFREG | 0o644);
    const renamed = await apply({
      op: 'renameNode', pid: 1, dstPid: 1, rid: rid(6), srcParent: 1, srcName: 'h', dstParent: d.ino, dstName: 'g',
      ancestryChecked: false, releaseIno: 0, now: 30,
    });
    assert.equal(renamed.code, 'OK');
    assert.deepEqual(renamed.renamed, { ino: h.ino, type: S_IFREG, movedDone: true, replacedIno: f.ino, replacedType: S_IFREG, replacedNlink: 1, replacedDone: true });
    assert.deepEqual((await r.inode(1, h.ino)).parents, [d.ino]);
    assert.deepEqual((await r.inode(2, f.ino)).parents, [1]);
    await assert.rejects(r.dentry(1, 1, 'h'), /not found/);

    // unlink of the last name with releaseIno: nlink 0 and into the trash in the same entry.
    const before = await sm.appliedIndex();
    const gone = await apply({ op: 'removeNode', pid: 1, rid: rid(7), parent: 1, name: 'f', dir: false, expectIno: 0, releaseIno: f.ino, now: 40 });
    assert.equal(await sm.appliedIndex(), before + 1);
    assert.equal(gone.inode?.nlink, 0);
    assert.equal(gone.released, true);
    assert.deepEqual((await r.trash(10)).map((t) => t.record.ino), [f.ino]);
    assert.equal((await r.inode(1, 1)).mtimeMs, 40);
    assert.equal((await apply({ op: 'removeNode', pid: 1, rid: rid(8), parent: 1, name: 'd', dir: false, expectIno: 0, releaseIno: 0, now: 41 })).code, 'IS_DIR');

    // rmdir checks emptiness at apply; the parent's nlink drops with the directory.
    assert.equal((await apply({ op: 'removeNode', pid: 1, rid: rid(9), parent: 1, name: 'd', dir: true, expectIno: 0, releaseIno: 0, now: 42 })).code, 'NOT_EMPTY');
    await apply({ op: 'removeNode', pid: 1, rid: rid(10), parent: d.ino, name: 'g', dir: false, expectIno: 0, releaseIno: 0, now: 43 });
    assert.equal((await r.inode(1, 1)).nlink, 3);
    assert.equal((await apply({ op: 'removeNode', pid: 1, rid: rid(11), parent: 1, name: 'd', dir: true, expectIno: 0, releaseIno: 0, now: 44 })).code, 'OK');
    assert.equal((await r.inode(1, 1)).nlink, 2);
    assert.equal(await r.maybeInode(1, d.ino), undefined);
  });
});

test('one-entry operations that need an inode of another copyset change nothing and say NOT_SUPPORTED', async () => {
  await withSm(async (sm, db, apply) => {
    await apply(part(1, 1, 100));
    const r = new MetaReader(sm);
    // A directory and a file whose inodes live in another copyset (ids outside every partition here).
    await apply({ op: 'createDentry', pid: 1, rid: rid(1), parent: 1, name: 'far-dir', ino: 5000, type: S_IFDIR, now: 5 });
    await apply({ op: 'createDentry', pid: 1, rid: rid(2), parent: 1, name: 'far-file', ino: 5001, type: S_IFREG, now: 5 });
    const snapshot = async () => {
      const out: string[] = [];
      for await (const [k, v] of db.iterator()) if (!k.includes('~applied') && !k.includes('~r/')) out.push(`${k}=${v}`);
      return out;
    };
    const kept = await snapshot();
    assert.equal((await apply({ op: 'removeNode', pid: 1, rid: rid(3), parent: 1, name: 'far-dir', dir: true, expectIno: 0, releaseIno: 0, now: 6 })).code, 'NOT_SUPPORTED');
    assert.equal((await apply({ op: 'linkNode', pid: 1, rid: rid(4), parent: 1, name: 'l', ino: 5001, now: 6 })).code, 'NOT_SUPPORTED');
    const d = (await apply({ op: 'createNode', pid: 1, inodePid: 1, rid: rid(5), parent: 1, name: 'd', mode: S_IFDIR | 0o755, uid: 0, gid: 0, rdev: 0, symlink: '', now: 7 })).inode!;
    const kept2 = await snapshot();
    assert.notDeepEqual(kept2, kept);
    // A directory moved under another parent needs the client's ancestry walk first.
    const move = { op: 'renameNode', pid: 1, dstPid: 1, srcParent: 1, srcName: 'far-dir', dstParent: d.ino, dstName: 'x', releaseIno: 0, now: 8 } as const;
    assert.equal((await apply({ ...move, rid: rid(6), ancestryChecked: false })).code, 'NOT_SUPPORTED');
    assert.deepEqual(await snapshot(), kept2);
    // A file inode elsewhere: the name goes, the client owes the inode its nlink.
    const un = await apply({ op: 'removeNode', pid: 1, rid: rid(7), parent: 1, name: 'far-file', dir: false, expectIno: 0, releaseIno: 0, now: 9 });
    assert.equal(un.code, 'OK');
    assert.equal(un.inode, undefined);
    assert.equal(un.dentry?.ino, 5001);
    const moved = await apply({ ...move, rid: rid(8), ancestryChecked: true });
    assert.equal(moved.renamed?.movedDone, false);
    assert.equal((await r.dentry(1, d.ino, 'x')).ino, 5000);
    assert.equal((await r.inode(1, d.ino)).nlink, 3);
  });
});

test('the inode counts the bytes its slices hold as they are applied (overwrites, zero slices, swaps); an older inode is counted from all chunks', async () => {
  await withSm(async (sm, db, apply) => {
    await apply(part(1, 1, 100));
    await apply({ op: 'createInode', pid: 1, mode: S_IFREG, uid: 0, gid: 0, rdev: 0, symlink: '', parent: 1, now: 5 });
    const r = new MetaReader(sm);
    const allocated = async () => (await r.inode(1, 2)).allocatedBytes;
    assert.equal(await allocated(), 0, 'a new file holds nothing');
    const s = (chunkId: number, offset: number, len: number, zero = false) => ({ chunkId, compaction: 0, offset, len, size: len, zero });
    await apply({ op: 'modifySlices', pid: 1, ino: 2, append: [[0, [s(1, 0, 100)]], [3, [s(2, 50, 10)]]], replace: null });
    assert.equal(await allocated(), 110);
    await apply({ op: 'modifySlices', pid: 1, ino: 2, append: [[0, [s(3, 50, 100)]]], replace: null });
    assert.equal(await allocated(), 160, 'an overwrite counts only the bytes it adds');
    await apply({ op: 'modifySlices', pid: 1, ino: 2, append: [[0, [s(4, 20, 40, true)]]], replace: null });
    assert.equal(await allocated(), 120, 'a zero slice is a hole');
    const merged = { ...s(3, 0, 150), compaction: 1 };
    await apply({ op: 'modifySlices', pid: 1, ino: 2, append: [], replace: { chunkIndex: 0, removed: [s(1, 0, 100), s(3, 50, 100)], added: [merged] } });
    assert.equal(await allocated(), 120, 'a compaction that keeps the bytes keeps the count');
    // An inode written before the counter existed: counted once from its chunks at its next change.
    const { allocatedBytes: _a, ...old } = await r.inode(1, 2);
    await db.put(sm.keys.inode(1, 2), JSON.stringify(old));
    const reopened = await new MetaStateMachine(db, 1, 7).load();
    let index = await reopened.appliedIndex();
    const apply2 = async (op: MetaOp) => (await reopened.apply([{ index: ++index, term: 1, data: Buffer.from(JSON.stringify(op)) }]))[0] as OpResult;
    const r2 = new MetaReader(reopened);
    assert.equal((await r2.inode(1, 2)).allocatedBytes, undefined);
    await apply2({ op: 'modifySlices', pid: 1, ino: 2, append: [[5, [s(5, 0, 7)]]], replace: null });
    assert.equal((await r2.inode(1, 2)).allocatedBytes, 127);
  });
});

test('a batch of entries reads level in one getMany per stage, not a get per record (apply-prefetch)', async () => {
  const tmp = tempDir('tierfs-sm-');
  const level = new Level<string, string>(join(tmp.path, 'db'));
  await level.open();
  // Counts the state machine's reads, the way it reaches level.
  const reads = { get: 0, getMany: 0 };
  const db = new Proxy(level, {
    get(target, prop) {
      if (prop === 'get' || prop === 'getMany') reads[prop]++;
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  try {
    const sm = await new MetaStateMachine(db, 1, 7).load();
    let index = 0;
    const entries = (ops: MetaOp[]) => ops.map((op) => ({ index: ++index, term: 1, data: Buffer.from(JSON.stringify(op)) }));
    await sm.apply(entries([part(1, 1, 10_000)]));
    const n = 64;
    const file = { mode: S_IFREG | 0o644, uid: 0, gid: 0, rdev: 0, symlink: '', now: 5 };
    const creates: MetaOp[] = Array.from({ length: n }, (_, i) => ({ op: 'createNode', pid: 1, inodePid: 1, rid: rid(100 + i), parent: 1, name: `f${i}`, ...file }));
    reads.get = reads.getMany = 0;
    const created = (await sm.apply(entries(creates))) as OpResult[];
    assert.ok(created.every((r) => r.code === 'OK'));
    assert.deepEqual(reads, { get: 0, getMany: 1 });
    // Renames read the names, then (second stage) the inodes the names point to.
    const renames: MetaOp[] = Array.from({ length: n }, (_, i) => ({
      op: 'renameNode', pid: 1, dstPid: 1, rid: rid(200 + i), srcParent: 1, srcName: `f${i}`, dstParent: 1, dstName: `g${i}`, ancestryChecked: false, releaseIno: 0, now: 6,
    }));
    reads.get = reads.getMany = 0;
    assert.ok(((await sm.apply(entries(renames))) as OpResult[]).every((r) => r.code === 'OK'));
    assert.ok(reads.get === 0 && reads.getMany <= 2, JSON.stringify(reads));
    // A cold cache (a restart) is where it counts: every record comes from level.
    await sm.store.settled();
    const cold = await new MetaStateMachine(db, 1, 7).load();
    const unlinks: MetaOp[] = Array.from({ length: n }, (_, i) => ({ op: 'removeNode', pid: 1, rid: rid(300 + i), parent: 1, name: `g${i}`, dir: false, expectIno: 0, releaseIno: 0, now: 7 }));
    reads.get = reads.getMany = 0;
    const removed = (await cold.apply(entries(unlinks))) as OpResult[];
    assert.ok(removed.every((r) => r.code === 'OK'), JSON.stringify(removed[0]));
    assert.ok(reads.get <= 1 && reads.getMany === 2, JSON.stringify(reads));
    assert.equal(new MetaReader(cold).partition(1).dentryCount, 0);

    // Moves into the recycle bin: the bin directory and each entry's name (made from the
    // inode the name points to) come with the two stages too, on a cold cache.
    const bin = (await cold.apply(entries([{ op: 'createNode', pid: 1, inodePid: 1, rid: rid(400), parent: 1, name: 'bin', mode: S_IFDIR | 0o700, uid: 0, gid: 0, rdev: 0, symlink: '', now: 8 }])))[0] as OpResult;
    await cold.apply(entries(Array.from({ length: n }, (_, i) => ({ op: 'createNode', pid: 1, inodePid: 1, rid: rid(500 + i), parent: 1, name: `t${i}`, ...file }) as MetaOp)));
    await cold.store.settled();
    const colder = await new MetaStateMachine(db, 1, 7).load();
    const trashes: MetaOp[] = Array.from({ length: n }, (_, i) => ({ op: 'trashNode', pid: 1, trashPid: 1, rid: rid(600 + i), parent: 1, name: `t${i}`, dir: false, trashDir: bin.inode!.ino, now: 9 }));
    reads.get = reads.getMany = 0;
    const trashed = (await colder.apply(entries(trashes))) as OpResult[];
    assert.ok(trashed.every((r) => r.code === 'OK' && r.trashEntry), JSON.stringify(trashed[0]));
    assert.ok(reads.get <= 1 && reads.getMany === 2, JSON.stringify(reads));
  } finally {
    await level.close();
    tmp.remove();
  }
});

test('recorded results below a client low watermark are pruned by key, the same ones on every replica', async () => {
  await withSm(async (sm, db, apply) => {
    await apply(part(1, 1, 10_000));
    const create = (clientId: string, seq: number, lowSeq: number): MetaOp => ({
      op: 'createInode', pid: 1, rid: { clientId, seq, lowSeq }, mode: S_IFREG | 0o644, uid: 0, gid: 0, rdev: 0, symlink: '', parent: 1, now: 5,
    });
    const recorded = async (clientId: string) => {
      const seqs: number[] = [];
      for await (const key of db.keys({ gte: sm.keys.requestPrefix(clientId), lt: `${sm.keys.requestPrefix(clientId)}~` })) {
        seqs.push(parseInt(key.slice(sm.keys.requestPrefix(clientId).length), 16));
      }
      return seqs;
    };
    // A client that lags 10 behind: every 32nd entry drops what is below its lowSeq.
    for (let seq = 1; seq <= 200; seq++) await apply(create('p1', seq, Math.max(0, seq - 10)));
    const left = await recorded('p1');
    assert.deepEqual(left, Array.from({ length: 200 - 182 + 1 }, (_, i) => 182 + i), 'the prune at seq 192 (lowSeq 182) left 182..200');
    // Results recorded before the watermark existed (an older version): the first prune finds
    // the oldest by one scan and goes on from there, at most 256 per entry.
    for (let seq = 1; seq <= 40; seq++) await apply(create('old', seq, 0));
    await db.del(sm.keys.requestWatermark('old'));
    await apply(create('old', 64, 50));
    assert.deepEqual(await recorded('old'), [64]);
    assert.equal(await db.get(sm.keys.requestWatermark('old')), '50');
    await apply(create('old', 96, 600));
    assert.equal(await db.get(sm.keys.requestWatermark('old')), '306', 'at most 256 per entry');
    // A retry of a pruned request is not recognised (the client promised never to send one).
    const before = new MetaReader(sm).partition(1).nextId;
    await apply(create('p1', 5, 190));
    assert.equal(new MetaReader(sm).partition(1).nextId, before + 1);
  });
});

test('readAt streams the named keys as they were at one applied index while applies go on (tierfs dump)', async () => {
  await withSm(async (sm, _db, apply) => {
    await apply(part(1, 1, 100));
    await apply({ op: 'createInode', pid: 1, mode: S_IFREG, uid: 0, gid: 0, rdev: 0, symlink: '', parent: 1, now: 5 });
    await apply({ op: 'createDentry', pid: 1, parent: 1, name: 'before', ino: 2, type: S_IFREG, now: 6 });
    const at = await sm.readAt(() => [sm.keys.allDentriesPrefix(1), sm.keys.inodePrefix(1)]);
    assert.equal(at.index, await sm.appliedIndex());
    // Applied after the read was taken (and before a single pair was read): not in it.
    await apply({ op: 'createDentry', pid: 1, parent: 1, name: 'after', ino: 2, type: S_IFREG, now: 7 });
    await apply({ op: 'deleteDentry', pid: 1, parent: 1, name: 'before', expectIno: 2, now: 8 });
    const keys: string[] = [];
    for await (const [key] of at.pairs) keys.push(key);
    assert.deepEqual(keys, [sm.keys.dentry(1, 1, 'before'), sm.keys.inode(1, 1), sm.keys.inode(1, 2)]);
    assert.ok(at.index < (await sm.appliedIndex()));
  });
});
