// The handle pool behind disk-cache reads: handles are reused, closed when evicted or
// dropped, and a handle in use is closed only after the read that uses it ends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FileHandle } from 'node:fs/promises';
import { FdPool } from '../../diskcache/fd-pool.js';
import { tempDir } from '../support/tmp.js';
import { waitFor } from '../support/wait.js';

const tmp = tempDir('tierfs-fdpool-');
const openFds = () => readdirSync('/proc/self/fd').length;
/** Closing goes through the thread pool: wait for the count rather than assume a tick. */
const fdsBecome = (n: number, what: string) => waitFor(`${what} (${n} fds open, now ${openFds()})`, () => openFds() === n, 10_000, 10);

test('handles are reused, and eviction and drop close them', async (t) => {
  t.after(() => tmp.remove());
  for (const name of ['a', 'b', 'c']) writeFileSync(join(tmp.path, name), name.repeat(10));
  const pathOf = (key: string) => join(tmp.path, key);
  const pool = new FdPool(2);
  const base = openFds();
  const seen: FileHandle[] = [];
  const read = (key: string) => pool.use(key, pathOf, async (fh) => {
    seen.push(fh);
    const buf = Buffer.alloc(3);
    await fh.read(buf, 0, 3, 0);
    return buf.toString();
  });
  assert.equal(await read('a'), 'aaa');
  assert.equal(await read('a'), 'aaa');
  assert.equal(seen[0], seen[1], 'the second read reuses the handle');
  assert.equal(openFds(), base + 1);
  await read('b');
  await read('c'); // evicts a (max 2)
  assert.equal(pool.size, 2);
  await fdsBecome(base + 2, 'the evicted handle is closed');
  pool.drop('b');
  await fdsBecome(base + 1, 'the dropped handle is closed');
  pool.clear();
  await fdsBecome(base, 'clear closes the rest');
});

test('a handle dropped while a read uses it stays open until that read ends', async (t) => {
  const dir = tempDir('tierfs-fdpool-busy-');
  t.after(() => dir.remove());
  writeFileSync(join(dir.path, 'x'), 'xyz');
  const pool = new FdPool(4);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const reading = pool.use('x', (k) => join(dir.path, k), async (fh) => {
    await gate;
    const buf = Buffer.alloc(3);
    await fh.read(buf, 0, 3, 0); // would fail with EBADF had the drop closed it
    return buf.toString();
  });
  await new Promise((r) => setImmediate(r));
  pool.drop('x');
  release();
  assert.equal(await reading, 'xyz');
});

test('a failed open is not cached: the next use opens again', async (t) => {
  const dir = tempDir('tierfs-fdpool-missing-');
  t.after(() => dir.remove());
  const pool = new FdPool(4);
  const pathOf = (k: string) => join(dir.path, k);
  await assert.rejects(pool.use('late', pathOf, async () => 1), { code: 'ENOENT' });
  assert.equal(pool.size, 0);
  writeFileSync(join(dir.path, 'late'), 'ok');
  assert.equal(await pool.use('late', pathOf, async () => 2), 2);
  pool.clear();
});
