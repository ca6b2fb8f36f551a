// Directories whose every name the mount knows answer a missing name without the metaserver
// (gateway/complete-dirs.ts): the chain of the directory's name-change versions, replies out
// of order, another mount's change (a gap) and the freshness window the trade is bounded by.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CompleteDirs } from '../../gateway/complete-dirs.js';
import { internalContext, Vfs } from '../../gateway/vfs.js';
import { ROOT_INO, S_IFDIR, S_IFREG } from '../../metaserver/meta-client.js';
import { MemoryFileData } from './support/memory-file-data.js';
import { MemoryMetaClient } from './support/memory-meta.js';

const ctx = internalContext(0, 0);
const dirAt = (ino: number, entriesVersion: number) => ({ ino, mode: S_IFDIR | 0o755, uid: 0, gid: 0, size: 0, nlink: 2, rdev: 0, atimeMs: 0, mtimeMs: 0, ctimeMs: 0, entriesVersion });

test('replies that close the version chain renew the directory; a gap (another mount) lets it expire', () => {
  const c = new CompleteDirs({ freshMs: 100 });
  c.listed(7, 10, ['a'], 1000);
  assert.equal(c.absent(7, 'a', 1050), false, 'a listed name is not absent');
  assert.equal(c.absent(7, 'b', 1050), true);
  // Two creates of ours, replies out of order: 12 waits for 11, then both close the chain.
  c.created(7, 'y', dirAt(7, 12), 1060);
  c.created(7, 'x', dirAt(7, 11), 1050);
  assert.equal(c.absent(7, 'x', 1140), false);
  assert.equal(c.absent(7, 'z', 1140), true, 'renewed from the closing request: fresh until 1150');
  assert.equal(c.absent(7, 'z', 1150), false);
  // Version 13 was someone else's: our 14 leaves a gap, nothing is renewed, and it expires.
  c.listed(8, 0, [], 2000);
  c.created(8, 'p', dirAt(8, 1), 2010);
  c.created(8, 'q', dirAt(8, 3), 2020);
  assert.equal(c.absent(8, 'r', 2105), true, 'still within the window renewed by version 1');
  assert.equal(c.absent(8, 'r', 2111), false);
  assert.equal(c.size, 1, 'a chain with a gap is dropped once stale');
});

test('a removal keeps the chain open until it expires; a create that met an existing name forgets the directory', () => {
  const c = new CompleteDirs({ freshMs: 100 });
  c.listed(7, 0, ['a', 'b'], 0);
  c.removed(7, 'a');
  assert.equal(c.absent(7, 'a', 10), true, 'our own unlink is known at once');
  c.created(7, 'c', dirAt(7, 2), 50);
  assert.equal(c.absent(7, 'z', 120), false, 'not renewed past the removal of unknown version');
  c.listed(9, 0, ['a'], 0);
  c.existed(9, 'x');
  assert.equal(c.absent(9, 'y', 1), false);
});

async function mountWithDir(gatewayCacheMs: number): Promise<{ meta: MemoryMetaClient; vfs: Vfs; dir: number }> {
  const meta = new MemoryMetaClient();
  const vfs = new Vfs(meta, new MemoryFileData(), { attrTimeoutMs: 30_000, entryTimeoutMs: 30_000, gatewayCacheMs });
  const dir = (await vfs.mkdir(ctx, ROOT_INO, 'd', 0o755, 0)).attr.ino;
  meta.calls.clear();
  return { meta, vfs, dir };
}

test('removals and renames whose replies carry the directory keep the chain closed (a rename within one directory is two versions)', () => {
  const c = new CompleteDirs({ freshMs: 100 });
  c.listed(7, 0, ['a', 'b', 'c'], 0);
  c.removed(7, 'a', dirAt(7, 1), 10);
  c.renamedWithin(7, 'b', 'b2', dirAt(7, 3), 20);
  assert.equal(c.absent(7, 'b', 115), true, 'renewed from the rename: fresh until 120');
  assert.equal(c.absent(7, 'b2', 115), false);
  // Across directories each side is one version.
  c.listed(8, 5, [], 0);
  c.removed(7, 'c', dirAt(7, 4), 30);
  c.addedUnverified(8, 'c', dirAt(8, 6), 30);
  assert.equal(c.absent(8, 'x', 125), true);
  assert.equal(c.absent(7, 'c', 125), true);
  // A removal whose reply skipped a version (another mount's change) leaves the gap open.
  c.removed(7, 'b2', dirAt(7, 6), 40);
  assert.equal(c.absent(7, 'z', 135), false, 'not renewed past the last closed change at 30');
});

test('creating files in a directory the mount made: the negative lookups cost no metaserver call', async () => {
  const { meta, vfs, dir } = await mountWithDir(60_000);
  for (let i = 0; i < 200; i++) {
    const e = await vfs.lookup(ctx, dir, `f${i}`).catch((err: { errno?: number }) => err);
    assert.equal((e as { errno?: number }).errno, 2, `f${i} is absent`);
    await vfs.create(ctx, dir, `f${i}`, S_IFREG | 0o644, 0o300 /* O_CREAT|O_EXCL */, 0);
  }
  assert.equal(meta.calls.get('lookup') ?? 0, 0);
  assert.equal(meta.calls.get('listDentries') ?? 0, 0);
  assert.equal(meta.calls.get('createNode'), 200);
  // A name the mount made is found (from its caches), a removed one is absent again.
  assert.ok('attr' in (await vfs.lookup(ctx, dir, 'f5')));
  await vfs.unlink(ctx, dir, 'f5');
  await assert.rejects(vfs.lookup(ctx, dir, 'f5'), (err: { errno?: number }) => err.errno === 2);
  assert.equal(meta.calls.get('lookup') ?? 0, 0);
});

test('a name another mount creates is seen once the window has passed; creating it meanwhile says EEXIST', async () => {
  const { meta, vfs, dir } = await mountWithDir(100);
  await vfs.create(ctx, dir, 'mine', S_IFREG | 0o644, 0o300, 0);
  // Another mount: straight to the metaserver.
  await meta.createNode(dir, 'theirs', { mode: S_IFREG | 0o644, uid: 0, gid: 0, exclusive: true });
  await assert.rejects(vfs.lookup(ctx, dir, 'theirs'), (err: { errno?: number }) => err.errno === 2);
  // O_EXCL still reaches the metaserver, which knows better; the directory is then forgotten.
  await assert.rejects(vfs.create(ctx, dir, 'theirs', S_IFREG | 0o644, 0o300, 0), (err: { errno?: number; code?: string }) => err.code === 'EXISTS' || err.errno === 17);
  assert.ok('attr' in (await vfs.lookup(ctx, dir, 'theirs')));
  // And after the window, without any create in between.
  await meta.createNode(dir, 'later', { mode: S_IFREG | 0o644, uid: 0, gid: 0, exclusive: true });
  await new Promise((r) => setTimeout(r, 150));
  assert.ok('attr' in (await vfs.lookup(ctx, dir, 'later')));
});
