// Directory prefetch: a scan of lookups that miss in one directory turns into one listing
// with inodes, after which the lookups are answered from the gateway's caches; names the
// listing did not hold still reach the metaserver.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { internalContext, Vfs } from '../../gateway/vfs.js';
import { ROOT_INO, S_IFDIR, S_IFREG } from '../../metaserver/meta-client.js';
import { MemoryFileData } from './support/memory-file-data.js';
import { MemoryMetaClient } from './support/memory-meta.js';

const ctx = internalContext(0, 0);

async function directory(files: number, gatewayCacheMs?: number): Promise<{ meta: MemoryMetaClient; vfs: Vfs; dir: number }> {
  const meta = new MemoryMetaClient();
  const dir = (await meta.createNode(ROOT_INO, 'd', { mode: S_IFDIR | 0o755, uid: 0, gid: 0, exclusive: true })).ino;
  for (let i = 0; i < files; i++) await meta.createNode(dir, `f${i}`, { mode: S_IFREG | 0o644, uid: 0, gid: 0, exclusive: true });
  meta.calls.clear();
  // A fresh mount: nothing of the directory in its caches.
  const vfs = new Vfs(meta, new MemoryFileData(), { attrTimeoutMs: 30_000, entryTimeoutMs: 30_000, gatewayCacheMs });
  return { meta, vfs, dir };
}

test('stat of every file of a directory costs a listing, not a lookup per name', async () => {
  const { meta, vfs, dir } = await directory(300);
  for (let i = 0; i < 300; i++) {
    const e = await vfs.lookup(ctx, dir, `f${i}`);
    assert.ok('attr' in e, `f${i} found`);
    assert.equal(e.attr.mode & S_IFREG, S_IFREG);
  }
  // The first 15 misses went one by one; the 16th started the prefetch; the rest hit.
  assert.equal(meta.calls.get('lookup'), 15);
  assert.equal(meta.calls.get('listDentries'), 1);
  assert.equal(meta.calls.get('batchGetInodes'), 1);
});

test('a name missing from the listing (created after it) is absent for the cache window, then looked up', async () => {
  const { meta, vfs, dir } = await directory(40, 100);
  for (let i = 0; i < 40; i++) await vfs.lookup(ctx, dir, `f${i}`);
  const lookups = meta.calls.get('lookup') ?? 0;
  await meta.createNode(dir, 'late', { mode: S_IFREG | 0o644, uid: 0, gid: 0, exclusive: true });
  // The listing was whole: a name it lacked is answered absent without a call (complete-dirs.ts).
  await assert.rejects(vfs.lookup(ctx, dir, 'late'), (err: { errno?: number }) => err.errno === 2);
  assert.equal(meta.calls.get('lookup'), lookups);
  await new Promise((r) => setTimeout(r, 150));
  const e = await vfs.lookup(ctx, dir, 'late');
  assert.ok('attr' in e && e.attr.ino > 0);
  assert.equal(meta.calls.get('lookup'), lookups + 1);
  await assert.rejects(vfs.lookup(ctx, dir, 'never-there'), (err: { errno?: number }) => err.errno === 2);
});

test('scattered misses in many directories start no prefetch', async () => {
  const { meta, vfs, dir } = await directory(10);
  for (let i = 0; i < 10; i++) await vfs.lookup(ctx, dir, `f${i}`);
  assert.equal(meta.calls.get('listDentries') ?? 0, 0);
  assert.equal(meta.calls.get('lookup'), 10);
});

test('a slow scan still finds prefetched names after the 1 s gateway cache; a directory past maxEntries is continued, not listed again', async () => {
  const { meta, dir } = await directory(40);
  const { DirPrefetcher } = await import('../../gateway/dir-prefetch.js');
  const { InodeTable } = await import('../../gateway/inode-table.js');
  const table = new InodeTable(meta, 5); // looked-up entries live 5 ms
  const pf = new DirPrefetcher(meta, table, { threshold: 1, windowMs: 10, maxEntries: 20, pageSize: 10, ttlMs: 60_000 });
  await pf.onMiss(dir);
  await new Promise((r) => setTimeout(r, 20)); // longer than the table's own TTL
  const names = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `f${from + i}`).sort();
  const all = names(0, 40);
  assert.ok(all.slice(0, 20).every((n) => table.dentries.get(dir, n)), 'the first 20 names (byte order) are still cached');
  assert.ok(all.slice(20).every((n) => !table.dentries.get(dir, n)), 'past maxEntries: not yet');
  const listed = meta.calls.get('listDentries') ?? 0;
  await pf.onMiss(dir); // the scan reaches a name past the first listing (its window has passed)
  assert.ok(all.slice(20).every((n) => table.dentries.get(dir, n)), 'the second prefetch continued where the first stopped');
  assert.equal((meta.calls.get('listDentries') ?? 0) - listed, 2, 'two pages: the rest, not the whole directory again');
});

test('READDIRPLUS of a large directory reads attributes once per listing page, not once per reply buffer', async () => {
  const { meta, vfs, dir } = await directory(600);
  const { fh } = await vfs.opendir(ctx, dir, 0);
  let offset = 0;
  let withAttrs = 0;
  for (;;) {
    const page = await vfs.readdir(ctx, dir, fh, offset, true);
    if (page.length === 0) break;
    withAttrs += page.filter((e) => e.entry).length;
    offset = page[page.length - 1]!.offset;
  }
  await vfs.releasedir(ctx, dir, fh);
  assert.equal(withAttrs, 600, 'every entry but . and .. carries its attributes');
  assert.equal(meta.calls.get('listDentries'), 1);
  const attrCalls = (meta.calls.get('batchGetAttr') ?? 0) + (meta.calls.get('batchGetInodes') ?? 0);
  assert.equal(attrCalls, 1, 'one attribute read for the 1,024-name page (the replies hold 256 each)');
});
