import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RemoteMetaClient } from '../../metaserver/client.js';
import { S_IFLNK, S_IFREG } from '../../metaserver/meta-client.js';
import { dirOpts, fileOpts, hasCode, startSoloMetaServer, type SoloMetaServer } from './fixture.js';

let ms: SoloMetaServer;
let c: RemoteMetaClient;
const file = fileOpts;
const dir = dirOpts;
const code = hasCode;

before(async () => {
  ms = await startSoloMetaServer();
  // Root partition in copyset 1, two more in copyset 2 and 1: renames cross partitions and copysets.
  await ms.addPartition(1, 1, 1, 100);
  await ms.addPartition(2, 2, 101, 200);
  await ms.addPartition(1, 3, 201, 300);
  c = new RemoteMetaClient({ fsId: 1, mds: ms.directory });
});
after(async () => {
  await c.close();
  await ms.close();
});

test('create, lookup, list with paging, nlink of directories, NAME_TOO_LONG', async () => {
  const d = await c.createNode(1, 'd1', dir);
  assert.equal(d.nlink, 2);
  assert.equal((await c.getInode(1)).nlink, 3);
  for (const n of ['x', 'a', 'm']) await c.createNode(d.ino, n, file);
  assert.deepEqual((await c.listDentries(d.ino, '', 2)).map((e) => e.name), ['a', 'm']);
  assert.deepEqual((await c.listDentries(d.ino, 'm', 10)).map((e) => e.name), ['x']);
  await assert.rejects(c.createNode(d.ino, 'a', file), code('EXISTS'));
  const again = await c.createNode(d.ino, 'a', { ...file, exclusive: false });
  assert.equal(again.ino, (await c.lookup(d.ino, 'a')).ino);
  await assert.rejects(c.createNode(d.ino, 'n'.repeat(256), file), code('NAME_TOO_LONG'));
  await c.createNode(d.ino, 'n'.repeat(255), file);
  const parent = await c.getInode(d.ino);
  assert.ok(parent.mtimeMs >= d.mtimeMs);
  const link = await c.createNode(d.ino, 'ln', { ...dir, mode: S_IFLNK | 0o777, symlink: '/target' });
  assert.equal((await c.getInode(link.ino)).symlink, '/target');
  const attrs = await c.batchGetAttr([1, d.ino, link.ino]);
  assert.deepEqual(attrs.map((a) => a.ino), [1, d.ino, link.ino]);
});

test('unlink, rmdir, hard links, xattrs, setattr, slices, trash', async () => {
  const d = await c.createNode(1, 'd2', dir);
  const f = await c.createNode(d.ino, 'f', file);
  await assert.rejects(c.rmdir(1, 'd2'), code('NOT_EMPTY'));
  await assert.rejects(c.unlink(1, 'd2'), code('IS_DIR'));
  await assert.rejects(c.rmdir(d.ino, 'f'), code('NOT_DIR'));
  const linked = await c.link(f.ino, 1, 'f-link');
  assert.equal(linked.nlink, 2);
  assert.deepEqual(linked.parents.sort(), [1, d.ino].sort());
  assert.equal((await c.unlink(d.ino, 'f')).nlink, 1);
  await c.rmdir(1, 'd2');
  await assert.rejects(c.getInode(d.ino), code('NOT_FOUND'));

  await c.setXattr(f.ino, 'user.a', Buffer.from('1'), 0);
  await assert.rejects(c.setXattr(f.ino, 'user.a', Buffer.from('2'), 1), code('EXISTS'));
  await assert.rejects(c.setXattr(f.ino, 'user.b', Buffer.from('2'), 2), code('NO_DATA'));
  assert.equal((await c.getXattr(f.ino, 'user.a')).toString(), '1');
  assert.deepEqual(await c.listXattr(f.ino), ['user.a']);
  await c.removeXattr(f.ino, 'user.a');
  await assert.rejects(c.getXattr(f.ino, 'user.a'), code('NO_DATA'));

  const set = await c.setAttr(f.ino, { size: 4096, mode: 0o600 });
  assert.equal(set.size, 4096);
  assert.equal(set.mode, S_IFREG | 0o600);
  const s = (chunkId: number) => ({ chunkId, compaction: 0, offset: 0, len: 4096, size: 4096, zero: false });
  await c.appendSlices(f.ino, new Map([[0, [s(10), s(11)]]]));
  await c.replaceSlices(f.ino, 0, [s(10), s(11)], [{ ...s(12), compaction: 1 }]);
  await assert.rejects(c.replaceSlices(f.ino, 0, [s(10)], [s(13)]), code('TX_CONFLICT'));
  assert.deepEqual((await c.getSlices(f.ino)).get(0)?.map((x) => x.chunkId), [12]);
  assert.equal((await c.usage()).usedBytes >= 4096, true);

  const last = await c.unlink(1, 'f-link');
  assert.equal(last.nlink, 0);
  await c.releaseOrphan(f.ino);
  // The trash job (no deleter configured here) purges the inode on the leader.
  for (const n of ms.manager.list()) await n.emptyTrash();
  await assert.rejects(c.getInode(f.ino), code('NOT_FOUND'));
});

test('rename: same dir, across partitions, over a file, over an empty dir, errors', async () => {
  // Spread directories over partitions: the client places new inodes round robin.
  const a = await c.createNode(1, 'ra', dir);
  const b = await c.createNode(1, 'rb', dir);
  const sub = await c.createNode(a.ino, 'sub', dir);
  const f1 = await c.createNode(a.ino, 'f1', file);
  const f2 = await c.createNode(b.ino, 'f2', file);
  await c.rename(a.ino, 'f1', a.ino, 'f1b');
  assert.equal((await c.lookup(a.ino, 'f1b')).ino, f1.ino);
  await assert.rejects(c.lookup(a.ino, 'f1'), code('NOT_FOUND'));
  // Over a file in another directory: the old target loses a link.
  const res = await c.rename(a.ino, 'f1b', b.ino, 'f2');
  assert.equal(res.replaced?.ino, f2.ino);
  assert.equal(res.replaced?.nlink, 0);
  assert.equal((await c.lookup(b.ino, 'f2')).ino, f1.ino);
  assert.deepEqual((await c.getInode(f1.ino)).parents, [b.ino]);
  // A directory across parents: nlink moves with it.
  await c.rename(a.ino, 'sub', b.ino, 'sub');
  assert.equal((await c.getInode(a.ino)).nlink, 2);
  assert.equal((await c.getInode(b.ino)).nlink, 3);
  // Over an empty directory, and NOT_EMPTY / IS_DIR / NOT_DIR / into itself.
  const empty = await c.createNode(1, 'empty', dir);
  await c.rename(1, 'ra', 1, 'empty');
  await assert.rejects(c.getInode(empty.ino), code('NOT_FOUND'));
  assert.equal((await c.lookup(1, 'empty')).ino, a.ino);
  await c.createNode(a.ino, 'x', file);
  await assert.rejects(c.rename(1, 'rb', 1, 'empty'), code('NOT_EMPTY'));
  await assert.rejects(c.rename(b.ino, 'f2', 1, 'empty'), code('IS_DIR'));
  await assert.rejects(c.rename(1, 'rb', a.ino, 'x'), code('NOT_DIR'));
  await assert.rejects(c.rename(1, 'rb', sub.ino, 'inside'), code('INVALID_ARGUMENT'));
  await assert.rejects(c.rename(1, 'nope', 1, 'z'), code('NOT_FOUND'));
  // No half-done transactions remain: every name is readable.
  for (const n of ms.manager.list()) assert.equal((await n.reader.preparedTxs()).length, 0);
});

test('partitions out of ids turn read-only and the client moves on; concurrent creates get distinct inodes', async () => {
  const d = await c.createNode(1, 'many', dir);
  // More files than the first three partitions have ids left.
  const made = [];
  for (let batch = 0; batch < 10; batch++) {
    made.push(...(await Promise.all(Array.from({ length: 30 }, (_, i) => c.createNode(d.ino, `f${batch * 30 + i}`, file)))));
  }
  assert.equal(new Set(made.map((m) => m.ino)).size, 300);
  const listed: string[] = [];
  for (let last = ''; ; ) {
    const page = await c.listDentries(d.ino, last, 50);
    if (page.length === 0) break;
    listed.push(...page.map((e) => e.name));
    last = page[page.length - 1]!.name;
  }
  assert.equal(listed.length, 300);
  assert.deepEqual(listed, [...listed].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))));
  assert.ok(ms.directory.partitions.length > 3, 'the client asked the MDS for more partitions');
});

test('a file is created next to its name in one CreateNode; lookups carry the attributes of local inodes', async () => {
  const d = await c.createNode(1, 'colocated', dir);
  const created = await c.createNodeWithParent(d.ino, 'f', file);
  const parentRoute = await c.router.route(d.ino);
  const fileRoute = await c.router.route(created.inode.ino);
  assert.equal(fileRoute.copysetId, parentRoute.copysetId);
  assert.equal(created.parent?.ino, d.ino);
  assert.deepEqual(created.parent, await c.getInode(d.ino));
  const found = await c.lookup(d.ino, 'f');
  assert.equal(found.ino, created.inode.ino);
  assert.deepEqual(found.inode, await c.getInode(created.inode.ino));
  // Non-exclusive create of an existing name returns the existing inode, exclusive fails.
  assert.equal((await c.createNodeWithParent(d.ino, 'f', { ...file, exclusive: false })).inode.ino, created.inode.ino);
  await assert.rejects(c.createNodeWithParent(d.ino, 'f', file), code('EXISTS'));
});

test('in one copyset every POSIX operation is one Raft entry, with no reads before it', async () => {
  const group = ms.manager.get(1, 1).group;
  const entries = async (fn: () => Promise<unknown>) => {
    const before = group.status().commitIndex;
    await fn();
    return group.status().commitIndex - before;
  };
  const top = await c.createNode(1, 'one-entry', dir); // under the root: may be spread to another copyset
  const home = await c.router.route(top.ino);
  assert.ok(home.copysetId === 1 || home.copysetId === 2);
  const g = ms.manager.get(1, home.copysetId).group;
  const count = async (fn: () => Promise<unknown>) => {
    const before = g.status().commitIndex;
    await fn();
    return g.status().commitIndex - before;
  };
  let sub = 0;
  assert.equal(await count(async () => (sub = (await c.createNode(top.ino, 'sub', dir)).ino)), 1, 'mkdir');
  assert.equal((await c.router.route(sub)).copysetId, home.copysetId, 'a subdirectory stays in its parent copyset');
  let f = 0;
  assert.equal(await count(async () => (f = (await c.createNode(sub, 'f', file)).ino)), 1, 'create');
  assert.equal(await count(() => c.setAttr(f, { mode: 0o600 })), 1, 'setattr');
  assert.equal(await count(() => c.appendSlicesAndAttrs(f, new Map([[0, [{ chunkId: 9, compaction: 0, offset: 0, len: 5, size: 5, zero: false }]]]), { size: 5, mtimeMs: 1, ctimeMs: 1 })), 1, 'close');
  assert.equal(await count(() => c.link(f, top.ino, 'f2')), 1, 'link');
  assert.equal((await c.getInode(f)).nlink, 2);
  assert.equal(await count(() => c.rename(sub, 'f', top.ino, 'moved')), 1, 'rename across directories');
  assert.deepEqual((await c.getInode(f)).parents.sort(), [top.ino, top.ino]);
  const topBefore = await c.getInode(top.ino);
  let unlinked: Awaited<ReturnType<typeof c.unlinkWithParent>> | null = null;
  assert.equal(await count(async () => (unlinked = await c.unlinkWithParent(top.ino, 'f2'))), 1, 'unlink');
  assert.equal(unlinked!.inode.nlink, 1);
  // The directory after comes with the answer (the mount answers the kernel's next getattr of it).
  assert.equal(unlinked!.parent?.ino, top.ino);
  assert.equal(unlinked!.parent?.entriesVersion, (topBefore.entriesVersion ?? 0) + 1);
  const other = await c.createNode(top.ino, 'other', file);
  let res: Awaited<ReturnType<typeof c.rename>> = {};
  assert.equal(await count(async () => (res = await c.rename(top.ino, 'other', top.ino, 'moved', { releaseIno: f }))), 1, 'rename over a file');
  const { parents, ...rest } = res;
  assert.deepEqual(rest, { ino: other.ino, type: S_IFREG, replaced: { ino: f, nlink: 0, type: S_IFREG }, released: true });
  assert.deepEqual(parents?.map((p) => p.ino), [top.ino, top.ino]);
  assert.deepEqual(parents?.[1], await c.getInode(top.ino));
  assert.equal(await count(() => c.unlink(top.ino, 'moved', { releaseIno: other.ino })), 1, 'unlink with release');
  assert.equal(await count(() => c.rmdir(top.ino, 'sub')), 1, 'rmdir');
  await assert.rejects(c.getInode(sub), code('NOT_FOUND'));
  // Reads go on the leader under its lease: no entry.
  assert.equal(await entries(() => Promise.all([c.lookup(1, 'one-entry'), c.listDentries(top.ino, '', 10), c.batchGetAttr([top.ino])])), 0);
});

test('concurrent calls to one copyset travel as Batch RPCs, each with its own result', async () => {
  const d = await c.createNode(1, 'batched', dir);
  const batches = c.rpc.batcher.batches;
  const made = await Promise.all(Array.from({ length: 64 }, (_, i) => c.createNode(d.ino, `f${i}`, file)));
  assert.equal(new Set(made.map((m) => m.ino)).size, 64);
  assert.ok(c.rpc.batcher.batches > batches, 'the creates went out batched');
  const results = await Promise.allSettled([
    ...made.map((m, i) => (i % 2 ? c.unlink(d.ino, `f${i}`) : c.getInode(m.ino))),
    c.unlink(d.ino, 'no-such-name'),
  ]);
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 64);
  assert.ok(code('NOT_FOUND')((results[64] as PromiseRejectedResult).reason));
  assert.equal((await c.listDentries(d.ino, '', 100)).length, 32);
});

test('RENAME_EXCHANGE swaps two names in one entry, parents and nlink follow a directory', async () => {
  const top = await c.createNode(1, 'xchg', dir);
  const g = ms.manager.get(1, (await c.router.route(top.ino)).copysetId).group;
  const a = await c.createNode(top.ino, 'a', dir);
  const f = await c.createNode(top.ino, 'f', file);
  const sub = await c.createNode(a.ino, 'sub', dir);
  const x = await c.createNode(a.ino, 'x', file);
  const before = g.status().commitIndex;
  await c.exchange(top.ino, 'f', a.ino, 'x');
  assert.equal(g.status().commitIndex - before, 1);
  assert.equal((await c.lookup(top.ino, 'f')).ino, x.ino);
  assert.equal((await c.lookup(a.ino, 'x')).ino, f.ino);
  assert.deepEqual((await c.getInode(x.ino)).parents, [top.ino]);
  // A directory trades places with a file: the ".." link moves between the parents.
  const nTop = (await c.getInode(top.ino)).nlink;
  const nA = (await c.getInode(a.ino)).nlink;
  await c.exchange(a.ino, 'sub', top.ino, 'f');
  assert.equal((await c.getInode(top.ino)).nlink, nTop + 1);
  assert.equal((await c.getInode(a.ino)).nlink, nA - 1);
  assert.deepEqual((await c.getInode(sub.ino)).parents, [top.ino]);
  // A directory cannot be swapped into its own subtree.
  await assert.rejects(c.exchange(top.ino, 'a', a.ino, 'sub'), code('INVALID_ARGUMENT'));
  await assert.rejects(c.exchange(top.ino, 'a', top.ino, 'nope'), code('NOT_FOUND'));
});
