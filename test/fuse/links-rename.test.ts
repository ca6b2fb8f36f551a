// Hard links are one kernel inode (nlink, mode, size and data coherent through both names at
// once, even with long attribute timeouts), and renameat2's RENAME_NOREPLACE / RENAME_EXCHANGE.
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { mountMem, py, type Mounted } from './support/mounted.js';

const RENAMEAT2 = `
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
r = libc.renameat2(AT_FDCWD, sys.argv[1].encode(), AT_FDCWD, sys.argv[2].encode(), int(sys.argv[3]))
print(r, ctypes.get_errno() if r else 0)
`;

describe('fuse server: hard links and rename flags', () => {
  let m: Mounted;
  let p: (name: string) => string;
  before(async () => {
    // Long timeouts: coherence must come from one inode, not from asking again.
    m = await mountMem({ entryTimeoutMs: 3_600_000, attrTimeoutMs: 3_600_000 });
    p = (name) => join(m.dir, name);
  });
  after(async () => {
    await m?.close();
  });

  test('a hard link is the same inode: nlink, chmod, truncate and data seen through both names at once', async () => {
    await fsp.writeFile(p('a'), 'hello world');
    const before = await fsp.stat(p('a')); // cached for an hour from here on
    assert.equal(before.nlink, 1);
    await fsp.link(p('a'), p('b'));
    const sa = await fsp.stat(p('a'));
    const sb = await fsp.stat(p('b'));
    assert.equal(sa.ino, sb.ino);
    assert.equal(sa.nlink, 2, 'nlink through the old name right after link');
    assert.equal(sb.nlink, 2);
    await fsp.chmod(p('b'), 0o600);
    assert.equal((await fsp.stat(p('a'))).mode & 0o777, 0o600, 'chmod through b seen through a');
    await fsp.truncate(p('b'), 5);
    assert.equal((await fsp.stat(p('a'))).size, 5, 'truncate through b seen through a');
    assert.equal(await fsp.readFile(p('a'), 'utf8'), 'hello');
    const fh = await fsp.open(p('b'), 'r+');
    await fh.write('HE', 0);
    await fh.close();
    assert.equal(await fsp.readFile(p('a'), 'utf8'), 'HEllo', 'data written through b read through a');
    await fsp.unlink(p('a'));
    assert.equal((await fsp.stat(p('b'))).nlink, 1, 'unlink of a seen through b');
    assert.equal(await fsp.readFile(p('b'), 'utf8'), 'HEllo');
  });

  test('RENAME_NOREPLACE refuses an existing target and renames onto a free name', async () => {
    await fsp.writeFile(p('n1'), 'one');
    await fsp.writeFile(p('n2'), 'two');
    assert.equal((await py(RENAMEAT2, p('n1'), p('n2'), '1')).trim(), '-1 17'); // EEXIST
    assert.equal(await fsp.readFile(p('n2'), 'utf8'), 'two');
    assert.equal((await py(RENAMEAT2, p('n1'), p('n3'), '1')).trim(), '0 0');
    assert.equal(await fsp.readFile(p('n3'), 'utf8'), 'one');
    await assert.rejects(fsp.stat(p('n1')), { code: 'ENOENT' });
  });

  test('RENAME_EXCHANGE swaps two names atomically (a file and a directory)', async () => {
    await fsp.writeFile(p('x1'), 'file');
    await fsp.mkdir(p('x2'));
    await fsp.writeFile(p('x2/inside'), 'in');
    const i1 = (await fsp.stat(p('x1'))).ino;
    const i2 = (await fsp.stat(p('x2'))).ino;
    assert.equal((await py(RENAMEAT2, p('x1'), p('x2'), '2')).trim(), '0 0');
    assert.equal((await fsp.stat(p('x1'))).ino, i2);
    assert.equal((await fsp.stat(p('x2'))).ino, i1);
    assert.equal(await fsp.readFile(p('x2'), 'utf8'), 'file');
    assert.equal(await fsp.readFile(p('x1/inside'), 'utf8'), 'in');
    // Exchange with a missing name fails with ENOENT and changes nothing.
    assert.equal((await py(RENAMEAT2, p('x1'), p('missing'), '2')).trim(), '-1 2');
    assert.ok((await fsp.stat(p('x1'))).isDirectory());
  });

  test('no server errors', () => {
    assert.equal(m.session.stats.errors, 0);
  });
});
