// Close-to-open bookkeeping (gateway/coherence.ts): which data version each cache of a mount
// holds, how the mount's own commits keep them in step, and when an open keeps the pages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DataVersions, revalidateForOpen, type RevalidationParts } from '../../gateway/coherence.js';
import type { Inode } from '../../metaserver/meta-client.js';

test('own commits that follow the held version keep the caches in step; another mount\'s commit in between does not', () => {
  const v = new DataVersions();
  v.reset(5, 3);
  assert.equal(v.own(5, 4), true);
  assert.equal(v.pagesHold(5, 4), true);
  assert.equal(v.own(5, 4), true, 'the same version again (the reply reported twice)');
  assert.equal(v.own(5, 3), true, 'an older reply overtaken by a newer one');
  assert.equal(v.own(5, 6), false, 'version 5 was another mount\'s: the slice map goes');
  assert.equal(v.pagesHold(5, 6), false, 'and the pages are unknown until the next open');
  assert.equal(v.own(5, 7), true, 'the slice map refilled from 6 on');
  assert.equal(v.pagesHold(5, 7), false);
});

test('own commits whose replies arrive out of order (concurrent flushes) keep the pages once the gap is filled', () => {
  const v = new DataVersions();
  v.reset(5, 3);
  v.own(5, 5);
  v.own(5, 6);
  assert.equal(v.pagesHold(5, 6), false, 'version 4 not seen yet: it may be another mount\'s');
  v.own(5, 4);
  assert.equal(v.pagesHold(5, 6), true, 'every version from 3 to 6 was this mount\'s: the pages are current');
  v.own(5, 8);
  assert.equal(v.pagesHold(5, 8), false, 'version 7 (another mount\'s) never arrives: the next open drops the pages');
});

test('attributes showing a newer version drop the slice map once; older or equal ones do not', () => {
  const v = new DataVersions();
  assert.equal(v.seen(9, 1), false, 'nothing held yet');
  assert.equal(v.seen(9, 1), false, 'and nothing recorded for an inode never opened here');
  v.reset(9, 1);
  assert.equal(v.seen(9, 1), true);
  assert.equal(v.seen(9, 0), true);
  assert.equal(v.seen(9, 2), false);
  assert.equal(v.seen(9, undefined), true, 'an older server sends none');
  v.reset(9, 2);
  v.forget(9);
  assert.equal(v.pagesHold(9, 2), false, 'the kernel forgot the inode');
});

function parts(server: Partial<Inode>): { core: RevalidationParts; calls: string[]; setServer(p: Partial<Inode>): void } {
  const calls: string[] = [];
  let cur: Inode = { ino: 7, mode: 0o100644, uid: 0, gid: 0, size: 10, nlink: 1, rdev: 0, atimeMs: 1, mtimeMs: 1, ctimeMs: 1, symlink: '', parents: [1], ...server };
  const attrs = new Map<number, { inode: Inode }>();
  const versions = new DataVersions();
  const core: RevalidationParts = {
    table: {
      attrs: { get: (ino) => attrs.get(ino), delete: (ino) => void attrs.delete(ino) },
      open: { isOpen: () => false },
      remember: (inode) => void attrs.set(inode.ino, { inode }),
    },
    meta: { getInode: async () => ({ ...cur }) },
    data: { invalidate: (ino) => void calls.push(`invalidate ${ino}`) },
    versions,
    invalidateKernel: async (ino) => void calls.push(`kernel ${ino}`),
  };
  return { core, calls, setServer: (p) => (cur = { ...cur, ...p }) };
}

test('an open keeps the pages only when the data version is the one they hold, whatever size and mtime say', async () => {
  const { core, calls, setServer } = parts({ dataVersion: 4 });
  assert.equal(await revalidateForOpen(core, 7), false, 'first open: nothing held');
  assert.deepEqual(calls.splice(0), ['invalidate 7', 'kernel 7']);
  assert.equal(await revalidateForOpen(core, 7), true);
  assert.deepEqual(calls.splice(0), []);
  setServer({ dataVersion: 5 }); // same size, same mtime: another mount rewrote it in place within the same ms
  assert.equal(await revalidateForOpen(core, 7), false);
  assert.deepEqual(calls.splice(0), ['invalidate 7', 'kernel 7']);
  assert.equal(await revalidateForOpen(core, 7), true);
});

test('from a server without versions, size and mtime decide (as before)', async () => {
  const { core, setServer } = parts({});
  assert.equal(await revalidateForOpen(core, 7), false);
  assert.equal(await revalidateForOpen(core, 7), true);
  setServer({ mtimeMs: 2 });
  assert.equal(await revalidateForOpen(core, 7), false);
});
