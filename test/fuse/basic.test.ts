// The fuse/ server mounted for real with an in-memory filesystem, driven by real syscalls
// (node:fs promises, which run on libuv's pool, and child processes). Every operation here
// crosses the kernel: a broken opcode, struct layout or reply shape fails its test.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { mountMem, py, run, type Mounted } from './support/mounted.js';

describe('fuse server: basic operations on a real mount', () => {
  let m: Mounted;
  let p: (name: string) => string;
  before(async () => {
    m = await mountMem();
    p = (name) => join(m.dir, name);
  });
  after(async () => {
    await m?.close();
  });

  test('INIT negotiated 1 MiB writes, 256 pages, readdirplus and async reads', () => {
    const c = m.session.conn;
    assert.equal(c.major, 7);
    assert.ok(c.minor >= 31, `minor ${c.minor}`);
    assert.equal(c.maxWrite, 1 << 20);
    assert.equal(c.maxPages, 256);
    const has = (bit: bigint) => (c.flags & bit) !== 0n;
    assert.ok(has(1n << 0n), 'ASYNC_READ');
    assert.ok(has(1n << 13n), 'DO_READDIRPLUS');
    assert.ok(has(1n << 14n), 'READDIRPLUS_AUTO');
    assert.ok(has(1n << 18n), 'PARALLEL_DIROPS');
    assert.ok(has(1n << 3n), 'ATOMIC_O_TRUNC');
    assert.ok(has(1n << 4n), 'EXPORT_SUPPORT');
    assert.ok(!has(1n << 16n), 'no WRITEBACK_CACHE unless asked');
    assert.ok(!has(1n << 20n), 'no POSIX_ACL');
    assert.equal(c.maxReadahead, 1 << 20, 'readahead raised on the bdi to 1 MiB');
  });

  test('sequential reads arrive as 1 MiB READs (readahead window and max_pages)', async () => {
    m.fs.addFile(1, 'seq', Buffer.alloc(16 << 20, 3));
    const r = await run('sh', ['-c', `cat ${p('seq')} | wc -c`]);
    assert.equal(r.stdout.trim(), String(16 << 20));
    assert.equal(m.fs.counters.largestRead, 1 << 20);
  });

  test('create, write, read back (small and multi-MiB, crossing max_write)', async () => {
    await fsp.writeFile(p('small'), 'hello fuse\n');
    assert.equal(await fsp.readFile(p('small'), 'utf8'), 'hello fuse\n');
    const big = Buffer.alloc(3 * 1024 * 1024 + 12345);
    for (let i = 0; i + 4 <= big.length; i += 4) big.writeUInt32LE(i, i);
    await fsp.writeFile(p('big'), big);
    const back = await fsp.readFile(p('big'));
    assert.equal(back.length, big.length);
    assert.equal(createHash('sha256').update(back).digest('hex'), createHash('sha256').update(big).digest('hex'));
    const dd = await run('dd', ['if=/dev/zero', `of=${p('mib')}`, 'bs=1M', 'count=2', 'status=none']);
    assert.equal(dd.code, 0, dd.stderr);
    assert.equal(m.fs.counters.largestWrite, 1 << 20, 'a 1 MiB write(2) arrives as one 1 MiB WRITE');
    const st = await fsp.stat(p('big'));
    assert.equal(st.size, big.length);
    assert.ok(st.isFile());
    // pwrite in the middle, read a range back through another process
    const fh = await fsp.open(p('big'), 'r+');
    await fh.write(Buffer.from('XYZ'), 0, 3, 1_000_000);
    await fh.close();
    const r = await run('dd', [`if=${p('big')}`, 'bs=1', 'skip=1000000', 'count=3', 'status=none']);
    assert.equal(r.stdout, 'XYZ');
  });

  test('mkdir, readdir, rename, unlink, rmdir', async () => {
    await fsp.mkdir(p('dir'));
    for (const n of ['a', 'b', 'c']) await fsp.writeFile(p(`dir/${n}`), n);
    assert.deepEqual((await fsp.readdir(p('dir'))).sort(), ['a', 'b', 'c']);
    await fsp.rename(p('dir/a'), p('dir/a2'));
    assert.deepEqual((await fsp.readdir(p('dir'))).sort(), ['a2', 'b', 'c']);
    assert.equal(await fsp.readFile(p('dir/a2'), 'utf8'), 'a');
    await assert.rejects(fsp.stat(p('dir/a')), { code: 'ENOENT' });
    await fsp.mkdir(p('dir2'));
    await fsp.rename(p('dir/b'), p('dir2/b')); // across directories
    assert.equal(await fsp.readFile(p('dir2/b'), 'utf8'), 'b');
    await assert.rejects(fsp.rmdir(p('dir')), { code: 'ENOTEMPTY' });
    await fsp.unlink(p('dir/a2'));
    await fsp.unlink(p('dir/c'));
    await fsp.rmdir(p('dir'));
    await assert.rejects(fsp.stat(p('dir')), { code: 'ENOENT' });
    assert.equal((await fsp.stat(p('dir2'))).nlink, 2);
  });

  test('symlink and readlink', async () => {
    await fsp.writeFile(p('target'), 'T');
    await fsp.symlink('target', p('link'));
    assert.equal(await fsp.readlink(p('link')), 'target');
    assert.ok((await fsp.lstat(p('link'))).isSymbolicLink());
    assert.equal(await fsp.readFile(p('link'), 'utf8'), 'T');
    const r = await run('readlink', [p('link')]);
    assert.equal(r.stdout.trim(), 'target');
  });

  test('chmod, chown, utimes and truncate', async () => {
    await fsp.writeFile(p('attrs'), 'abcdefgh');
    await fsp.chmod(p('attrs'), 0o640);
    assert.equal((await fsp.stat(p('attrs'))).mode & 0o7777, 0o640);
    await fsp.chown(p('attrs'), 1234, 5678);
    const st = await fsp.stat(p('attrs'));
    assert.equal(st.uid, 1234);
    assert.equal(st.gid, 5678);
    await fsp.utimes(p('attrs'), 1_000_000, 2_000_000.5);
    const t = await fsp.stat(p('attrs'));
    assert.equal(t.atimeMs, 1_000_000_000);
    assert.equal(t.mtimeMs, 2_000_000_500);
    // Sub-second times: kept to the microsecond, exactly (time_gran 1 us).
    const ns = await py(
      `
import os, sys
os.utime(sys.argv[1], ns=(1_600_000_000_123_456_789, 1_700_000_000_987_654_321))
st = os.stat(sys.argv[1])
print(st.st_atime_ns, st.st_mtime_ns)
`,
      p('attrs'),
    );
    assert.equal(ns.trim(), '1600000000123456000 1700000000987654000');
    await fsp.truncate(p('attrs'), 3);
    assert.equal((await fsp.stat(p('attrs'))).size, 3);
    assert.equal(await fsp.readFile(p('attrs'), 'utf8'), 'abc');
    await fsp.truncate(p('attrs'), 6);
    assert.deepEqual(await fsp.readFile(p('attrs')), Buffer.from('abc\0\0\0'));
    // O_TRUNC at open (ATOMIC_O_TRUNC: the filesystem truncates inside OPEN)
    await fsp.writeFile(p('attrs'), 'z');
    assert.equal(await fsp.readFile(p('attrs'), 'utf8'), 'z');
  });

  test('xattrs: set, get, list, remove, size probe and ERANGE', async () => {
    await fsp.writeFile(p('x'), '');
    const out = await py(
      `
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
p = sys.argv[1].encode()
os.setxattr(p, b'user.color', b'blue-green')
os.setxattr(p, b'user.size', b'x' * 3000)
print(os.getxattr(p, b'user.color').decode())
print(','.join(sorted(os.listxattr(p))))
# size probe: a 0-byte buffer returns the value's length
print(libc.getxattr(p, b'user.color', None, 0))
print(libc.listxattr(p, None, 0))
# a buffer too small: ERANGE
buf = ctypes.create_string_buffer(4)
r = libc.getxattr(p, b'user.color', buf, 4)
print(r, ctypes.get_errno())
r = libc.listxattr(p, buf, 4)
print(r, ctypes.get_errno())
print(len(os.getxattr(p, b'user.size')))
try:
    os.setxattr(p, b'user.color', b'red', os.XATTR_CREATE)
except OSError as e:
    print('create', e.errno)
os.removexattr(p, b'user.color')
try:
    os.getxattr(p, b'user.color')
except OSError as e:
    print('gone', e.errno)
`,
      p('x'),
    );
    assert.deepEqual(out.trim().split('\n'), [
      'blue-green',
      'user.color,user.size',
      '10',
      String('user.color\0user.size\0'.length),
      '-1 34',
      '-1 34',
      '3000',
      'create 17',
      'gone 61',
    ]);
  });

  test('statfs', async () => {
    const s = await fsp.statfs(m.dir);
    assert.equal(s.bsize, 4096);
    assert.equal(s.blocks, 1 << 20);
    assert.equal(s.bavail, 1 << 19);
    const r = await run('stat', ['-f', '-c', '%l', m.dir]);
    assert.equal(r.stdout.trim(), '255');
  });

  test('mknod of a FIFO', async () => {
    const r = await run('mkfifo', [p('fifo')]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok((await fsp.stat(p('fifo'))).isFIFO());
  });

  test('an operation the filesystem lacks answers ENOSYS, which the kernel maps (fallocate -> EOPNOTSUPP)', async () => {
    await fsp.writeFile(p('nofalloc'), 'x');
    const r = await py(
      `
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open(sys.argv[1], os.O_RDWR)
r = libc.fallocate(fd, 0, ctypes.c_long(0), ctypes.c_long(1 << 20))
print(r, ctypes.get_errno())
`,
      p('nofalloc'),
    );
    assert.equal(r.trim(), '-1 95'); // EOPNOTSUPP: the kernel's answer after FUSE_FALLOCATE got ENOSYS
  });

  test('an opcode the server does not serve (IOCTL) answers ENOSYS: the caller sees ENOTTY', async () => {
    await fsp.writeFile(p('noioctl'), 'x');
    const r = await py(
      `
import fcntl, os, sys, array
fd = os.open(sys.argv[1], os.O_RDONLY)
buf = array.array('l', [0])
try:
    fcntl.ioctl(fd, 0x80086601, buf)  # FS_IOC_GETFLAGS
    print('ok')
except OSError as e:
    print(e.errno)
`,
      p('noioctl'),
    );
    assert.equal(r.trim(), '25'); // ENOTTY
  });

  test('copy_file_range and lseek reach the filesystem', async () => {
    await fsp.writeFile(p('cfr-src'), 'copy me please');
    const copiesBefore = m.fs.counters.copies;
    const r = await py(
      `
import os, sys
src = os.open(sys.argv[1], os.O_RDONLY)
dst = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT, 0o644)
print(os.copy_file_range(src, dst, 100, 5, 2))
print(os.lseek(src, 3, os.SEEK_DATA), os.lseek(src, 3, os.SEEK_HOLE))
`,
      p('cfr-src'),
      p('cfr-dst'),
    );
    assert.deepEqual(r.trim().split('\n'), ['9', '3 14']);
    assert.equal(m.fs.counters.copies, copiesBefore + 1, 'the copy went through COPY_FILE_RANGE, not read+write');
    assert.deepEqual(await fsp.readFile(p('cfr-dst')), Buffer.from('\0\0me please'));
  });

  test('no server errors so far', () => {
    assert.equal(m.session.stats.errors, 0);
  });
});

describe('fuse server: kernel writeback cache (opt-in)', () => {
  test('writebackCache: negotiated, small writes coalesce into larger WRITEs, data and size correct', async () => {
    const m = await mountMem({}, { writebackCache: true });
    try {
      assert.equal(m.session.conn.writebackCache, true);
      assert.ok((m.session.conn.flags & (1n << 16n)) !== 0n);
      const r = await py(
        `
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
for i in range(256):
    os.write(fd, bytes([i % 251]) * 1024)
os.fsync(fd)
os.close(fd)
print(os.stat(sys.argv[1]).st_size)
`,
        join(m.dir, 'wb'),
      );
      assert.equal(r.trim(), String(256 * 1024));
      assert.ok(m.fs.counters.largestWrite > 1024, `writes stayed at ${m.fs.counters.largestWrite} bytes`);
      const back = await fsp.readFile(join(m.dir, 'wb'));
      for (let i = 0; i < 256; i++) assert.equal(back[i * 1024], i % 251);
    } finally {
      await m.close();
    }
  });
});
