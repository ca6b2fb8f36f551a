// The inode-based VFS through the real kernel (fuse/ server, in-memory metadata and data),
// with 30 s kernel caches: hard links coherent through every name at once, renameat2 flags,
// fallocate modes, SEEK_DATA/SEEK_HOLE, st_blocks of sparse files, O_DIRECT alignment,
// copy_file_range through the data path, and an unmount while a file is open.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, closeSync, linkSync, openSync, readFileSync, statSync, truncateSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cliPath } from '../support/process.js';
import {
  FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE, RENAME_EXCHANGE, RENAME_NOREPLACE, SEEK_DATA, SEEK_HOLE, py, syscall,
} from '../support/syscalls.js';
import { isMounted, startMemoryMount, type TestMount } from './support/mounted.js';

const KiB = 1024;
const MiB = 1024 * KiB;

describe('VFS through the kernel, 30 s attr/entry caches (memory cluster)', () => {
  let m: TestMount;
  const p = (name: string) => join(m.mountpoint, name);
  before(async () => {
    m = await startMemoryMount(30);
  });
  after(async () => {
    await m?.stop();
  });

  test('a hard link is one inode: nlink, mode, size and data agree through both names at once', () => {
    writeFileSync(p('a'), 'hello world');
    statSync(p('a')); // the kernel caches a's attributes for 30 s
    linkSync(p('a'), p('b'));
    assert.equal(statSync(p('a')).nlink, 2, 'nlink through the old name right after link');
    chmodSync(p('b'), 0o600);
    assert.equal(statSync(p('a')).mode & 0o777, 0o600, 'chmod through b shows through a');
    truncateSync(p('a'), 5);
    assert.equal(statSync(p('b')).size, 5, 'truncate through a shows through b');
    assert.equal(readFileSync(p('b'), 'utf8'), 'hello');
    const fd = openSync(p('b'), 'r+');
    writeSync(fd, 'HELLO, again', 0);
    assert.equal(readFileSync(p('a'), 'utf8'), 'HELLO, again', 'a write through b, still open, reads through a');
    closeSync(fd);
    unlinkSync(p('a'));
    assert.equal(statSync(p('b')).nlink, 1);
    assert.equal(statSync(p('b')).ino, statSync(p('b')).ino);
  });

  test('renameat2: NOREPLACE refuses an existing name, EXCHANGE swaps two', () => {
    writeFileSync(p('x'), 'X');
    writeFileSync(p('y'), 'Y');
    assert.deepEqual(syscall(`renameat2(${py(p('x'))}, ${py(p('y'))}, ${RENAME_NOREPLACE})`), { errno: 'EEXIST' });
    assert.equal(syscall(`renameat2(${py(p('x'))}, ${py(p('z'))}, ${RENAME_NOREPLACE})`), 0);
    assert.equal(syscall(`renameat2(${py(p('z'))}, ${py(p('y'))}, ${RENAME_EXCHANGE})`), 0);
    assert.equal(readFileSync(p('z'), 'utf8'), 'Y');
    assert.equal(readFileSync(p('y'), 'utf8'), 'X');
    assert.deepEqual(syscall(`renameat2(${py(p('y'))}, ${py(p('nothing'))}, ${RENAME_EXCHANGE})`), { errno: 'ENOENT' });
  });

  test('fallocate: default mode grows, KEEP_SIZE does not, PUNCH_HOLE and ZERO_RANGE read as zeros and free blocks', () => {
    const f = p('falloc');
    writeFileSync(f, Buffer.alloc(64 * KiB, 0x61));
    assert.equal(syscall(`fallocate(${py(f)}, 0, 0, ${MiB})`), 0);
    assert.equal(statSync(f).size, MiB);
    assert.equal(syscall(`fallocate(${py(f)}, ${FALLOC_FL_KEEP_SIZE}, 0, ${4 * MiB})`), 0);
    assert.equal(statSync(f).size, MiB);
    assert.equal(statSync(f).blocks, 128, '64 KiB written');
    assert.deepEqual(syscall(`fallocate(${py(f)}, ${FALLOC_FL_PUNCH_HOLE}, 0, 4096)`), { errno: 'ENOTSUP' }, 'PUNCH_HOLE without KEEP_SIZE (EOPNOTSUPP, named ENOTSUP by python)');
    assert.equal(syscall(`fallocate(${py(f)}, ${FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE}, 0, ${16 * KiB})`), 0);
    let data = readFileSync(f);
    assert.ok(data.subarray(0, 16 * KiB).every((b) => b === 0), 'the hole reads zeros (the kernel dropped its pages)');
    assert.ok(data.subarray(16 * KiB, 64 * KiB).every((b) => b === 0x61));
    assert.equal(statSync(f).blocks, 96);
    assert.equal(syscall(`fallocate(${py(f)}, ${FALLOC_FL_ZERO_RANGE}, ${32 * KiB}, ${2 * MiB})`), 0);
    data = readFileSync(f);
    assert.equal(data.length, 32 * KiB + 2 * MiB, 'ZERO_RANGE without KEEP_SIZE grows the file');
    assert.ok(data.subarray(16 * KiB, 32 * KiB).every((b) => b === 0x61) && data.subarray(32 * KiB).every((b) => b === 0));
  });

  test('a sparse 10 GiB file holds 0 blocks; SEEK_DATA/SEEK_HOLE find the one written range', () => {
    const f = p('sparse');
    writeFileSync(f, '');
    truncateSync(f, 10 * 1024 * MiB);
    assert.equal(statSync(f).blocks, 0);
    const fd = openSync(f, 'r+');
    writeSync(fd, Buffer.alloc(4096, 1), 0, 4096, 5 * MiB);
    closeSync(fd);
    assert.equal(statSync(f).blocks, 8);
    assert.equal(syscall(`seek(${py(f)}, 0, ${SEEK_DATA})`), 5 * MiB);
    assert.equal(syscall(`seek(${py(f)}, ${5 * MiB}, ${SEEK_HOLE})`), 5 * MiB + 4096);
    assert.equal(syscall(`seek(${py(f)}, 0, ${SEEK_HOLE})`), 0);
    assert.deepEqual(syscall(`seek(${py(f)}, ${6 * MiB}, ${SEEK_DATA})`), { errno: 'ENXIO' });
  });

  test('offsets past 2^53 - 1 answer EFBIG and leave the file usable (they cannot be held exactly)', () => {
    const f = p('huge-offset');
    writeFileSync(f, 'start');
    assert.deepEqual(syscall(`pwrite(${py(f)}, b'Q', ${2n ** 63n - 2n})`), { errno: 'EFBIG' });
    assert.deepEqual(syscall(`pwrite(${py(f)}, b'Q', ${2 ** 53})`), { errno: 'EFBIG' });
    assert.deepEqual(syscall(`fallocate(${py(f)}, 0, ${2 ** 53}, 4096)`), { errno: 'EFBIG' });
    assert.equal(statSync(f).size, 5);
    assert.equal(readFileSync(f, 'utf8'), 'start');
  });

  test('O_DIRECT writes must be 512-byte aligned (EINVAL otherwise, as on ext4)', () => {
    const f = p('direct');
    assert.deepEqual(syscall(`direct_write(${py(f)}, 0, 100)`), { errno: 'EINVAL' });
    assert.deepEqual(syscall(`direct_write(${py(f)}, 100, 512)`), { errno: 'EINVAL' });
    assert.equal(syscall(`direct_write(${py(f)}, 4096, 4096)`), 4096);
    assert.equal(statSync(f).size, 8192);
  });

  test('copy_file_range goes through the data path copy (not read/write), and the data is equal', () => {
    const src = p('copy-src');
    const dst = p('copy-dst');
    const data = Buffer.alloc(3 * MiB);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(i, i);
    writeFileSync(src, data);
    const before = stats(m).data.copies;
    assert.equal(syscall(`copy_range(${py(src)}, ${py(dst)}, 0, 0, ${data.length})`), data.length);
    assert.ok(stats(m).data.copies > before, 'the kernel sent COPY_FILE_RANGE');
    assert.ok(readFileSync(dst).equals(data));
  });
});

function stats(m: TestMount): { data: { copies: number }; gateway: { kernelInodes: number; unreleasedOrphans: number } } {
  const r = spawnSync(process.execPath, [cliPath, 'cache', 'stats', '--admin-socket', m.adminSocket, '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as ReturnType<typeof stats>;
}

describe('unmount and orphans (memory cluster)', () => {
  test('an unlinked open file is released once closed and forgotten', async () => {
    const m = await startMemoryMount(30);
    try {
      const f = join(m.mountpoint, 'orphan');
      writeFileSync(f, 'x');
      const fd = openSync(f, 'r');
      unlinkSync(f);
      assert.equal(stats(m).gateway.unreleasedOrphans, 1, 'kept while open');
      closeSync(fd);
      for (let i = 0; i < 100 && stats(m).gateway.unreleasedOrphans > 0; i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(stats(m).gateway.unreleasedOrphans, 0, 'released after the last close and FORGET');
    } finally {
      await m.stop();
    }
  });

  test('SIGTERM while a file is open inside: the mount detaches lazily and the process exits cleanly', async () => {
    const m = await startMemoryMount(1);
    const fd = openSync(join(m.mountpoint, 'busy'), 'w');
    try {
      writeSync(fd, 'data');
      m.proc.proc.kill('SIGTERM');
      assert.equal(await m.proc.exited(), 0);
      assert.equal(isMounted(m.mountpoint), false);
    } finally {
      try {
        closeSync(fd);
      } catch {
        /* ENOTCONN: the gateway ended the connection on its way out */
      }
      await m.stop();
    }
  });
});
