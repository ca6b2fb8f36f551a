// unlink and rmdir into the recycle bin as one Raft entry (TrashNode into the shard of the
// name's copyset), over real gRPC against a metaserver holding two copysets.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RemoteMetaClient } from '../../metaserver/client.js';
import { MAX_NAME_BYTES, ROOT_INO } from '../../metaserver/meta-client.js';
import { TRASH_NAME, listTrash, pathOfDir, trashShardName } from '../../metaserver/trash-bin.js';
import { dirOpts, fileOpts, hasCode, startSoloMetaServer, type SoloMetaServer } from './fixture.js';

let ms: SoloMetaServer;
let c: RemoteMetaClient;

before(async () => {
  ms = await startSoloMetaServer();
  // The root in copyset 1, another partition in copyset 2: top-level directories spread over both.
  await ms.addPartition(1, 1, 1, 100);
  await ms.addPartition(2, 2, 101, 200);
  c = new RemoteMetaClient({ fsId: 1, mds: ms.directory });
});
after(async () => {
  await c.close();
  await ms.close();
});

/** A top-level directory whose names live in copyset `copysetId`. */
async function dirIn(copysetId: number, name: string): Promise<number> {
  for (let i = 0; i < 4; i++) {
    const d = await c.createNode(ROOT_INO, `${name}-${i}`, dirOpts);
    if ((await c.router.route(d.ino)).copysetId === copysetId) return d.ino;
  }
  throw new Error(`no directory landed in copyset ${copysetId}`);
}

const entriesOf = async (copysetId: number, fn: () => Promise<unknown>) => {
  const g = ms.manager.get(1, copysetId).group;
  const before = g.status().commitIndex;
  await fn();
  return g.status().commitIndex - before;
};

test('an unlink into the bin is one entry in the name\'s copyset, even when /.trash lives in another', async () => {
  const far = await dirIn(2, 'far');
  const near = await dirIn(1, 'near');
  // The first removal in a copyset makes /.trash and that copyset's shard.
  await c.createNode(far, 'first', fileOpts);
  await c.removeToTrash(far, 'first', false);
  const trashIno = (await c.lookup(ROOT_INO, TRASH_NAME)).ino;
  const shard = await c.lookup(trashIno, trashShardName(1, 2));
  assert.equal((await c.router.route(shard.ino)).copysetId, 2, 'the shard keeps its names in copyset 2');

  const f = await c.createNode(far, 'report', fileOpts);
  const out: Array<string | null> = [];
  const n = await entriesOf(2, async () => out.push((await c.removeToTrash(far, 'report', false)).entry));
  assert.equal(n, 1, 'one Raft entry');
  assert.ok(out[0]?.endsWith(`-${far}-${f.ino}-report`), String(out[0]));
  await assert.rejects(c.lookup(far, 'report'), hasCode('NOT_FOUND'));
  const moved = await c.getInode(f.ino);
  assert.equal(moved.nlink, 1);
  assert.deepEqual(moved.parents, [shard.ino]);

  // The bin lists it with its original place, from either copyset's shard.
  await c.createNode(near, 'memo', fileOpts);
  await c.removeToTrash(near, 'memo', false);
  const { bins, entries } = await listTrash(c);
  const byName = new Map(entries.map((e) => [e.name, e]));
  assert.equal(byName.get('report')?.dir, shard.ino);
  assert.equal(byName.get('report')?.parent, far);
  assert.notEqual(byName.get('memo')?.dir, shard.ino);
  const farName = (await c.listDentries(ROOT_INO, '', 100)).find((d) => d.ino === far)!.name;
  assert.equal(await pathOfDir(c, far, bins), `/${farName}`);

  // A restore is one rename back.
  await c.rename(byName.get('report')!.dir, byName.get('report')!.entry, far, 'report');
  assert.equal((await c.lookup(far, 'report')).ino, f.ino);
  assert.deepEqual((await c.getInode(f.ino)).parents, [far]);
});

test('a file with other names loses only this one; directories must be empty; a long name is kept whole', async () => {
  const d = await dirIn(2, 'links');
  const f = await c.createNode(d, 'a', fileOpts);
  await c.link(f.ino, d, 'b');
  const res = await c.removeToTrash(d, 'a', false);
  assert.equal(res.entry, null, 'no bin entry while another name keeps the data');
  assert.equal(res.inode.nlink, 1);
  assert.deepEqual(res.inode.parents, [d]);
  assert.ok(!(await listTrash(c)).entries.some((e) => e.ino === f.ino));

  const sub = await c.createNode(d, 'sub', dirOpts);
  await c.createNode(sub.ino, 'inside', fileOpts);
  await assert.rejects(c.removeToTrash(d, 'sub', true), hasCode('NOT_EMPTY'));
  await assert.rejects(c.removeToTrash(d, 'b', true), hasCode('NOT_DIR'));
  await assert.rejects(c.removeToTrash(d, 'sub', false), hasCode('IS_DIR'));
  await c.removeToTrash(sub.ino, 'inside', false);
  const nlinkBefore = (await c.getInode(d)).nlink;
  const gone = await c.removeToTrash(d, 'sub', true);
  assert.ok(gone.entry);
  assert.equal((await c.getInode(d)).nlink, nlinkBefore - 1, 'the parent loses the subdirectory\'s ".." link');
  assert.equal((await c.getInode(gone.binDir)).nlink, 3, 'the shard gains it');

  const long = 'n'.repeat(MAX_NAME_BYTES);
  await c.createNode(d, long, fileOpts);
  const cut = await c.removeToTrash(d, long, false);
  assert.ok(Buffer.byteLength(cut.entry!) <= MAX_NAME_BYTES);
  assert.ok((await listTrash(c)).entries.some((e) => e.name === long), 'the whole name comes from the xattr');
});

test('a name whose inode lives in another copyset changes nothing and says NOT_SUPPORTED', async () => {
  const a = await dirIn(1, 'here');
  const b = await dirIn(2, 'there');
  const f = await c.createNode(b, 'f', fileOpts);
  await c.link(f.ino, a, 'far-link'); // the name in copyset 1, the inode in copyset 2
  await c.unlink(b, 'f');
  await assert.rejects(c.removeToTrash(a, 'far-link', false), hasCode('NOT_SUPPORTED'));
  assert.equal((await c.lookup(a, 'far-link')).ino, f.ino);
  assert.equal((await c.getInode(f.ino)).nlink, 1);
});
