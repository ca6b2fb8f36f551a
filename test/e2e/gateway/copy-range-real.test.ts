// copy_file_range, fallocate, SEEK_DATA/SEEK_HOLE and st_blocks through the kernel on a
// mount of real parts (metaserver gRPC, S3Adaptor, s3rver, FUSE): the copy adds no object to
// the bucket, reads equal, and a write to either side stays on its side.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync, writeSync, fsyncSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createObjectStore, listAll, type ObjectStore } from '../../../s3adaptor/object-store.js';
import { spawnProcess, type Spawned } from '../../support/process.js';
import { startS3, type TestS3 } from '../../support/s3.js';
import { tempDir } from '../../support/tmp.js';
import { forceUnmount } from '../../gateway/support/mounted.js';

const entry = join(dirname(fileURLToPath(import.meta.url)), 'support', 'real-parts-mount.js');
const MiB = 2 ** 20;
let s3: TestS3 | undefined;
let proc: Spawned | undefined;
let store: ObjectStore;
const tmp = tempDir('tierfs-copy-e2e-');
const mnt = join(tmp.path, 'mnt');

before(async () => {
  mkdirSync(mnt);
  s3 = await startS3('tierfs-copy-e2e');
  store = createObjectStore({ endpoint: s3.endpoint, bucket: s3.bucket, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', region: 'us-east-1', keyPrefix: 'fs1/' });
  // Without writeback: a close returns once the blocks are in S3, so the bucket can be counted.
  proc = await spawnProcess(process.execPath, [entry, mnt, join(tmp.path, 'admin.sock'), s3.endpoint, s3.bucket, join(tmp.path, 'cache')], {
    logFile: join(tmp.path, 'gateway.log'), readyTimeoutMs: 60_000,
  }).catch((err: unknown) => {
    forceUnmount(mnt);
    throw err;
  });
});
after(async () => {
  await proc?.stop(30_000).catch(() => {});
  forceUnmount(mnt);
  store?.close();
  await s3?.close();
  tmp.remove();
});

async function objectCount(): Promise<number> {
  let n = 0;
  for await (const _ of listAll(store, '')) n++;
  return n;
}

/** Runs a few lines of Python (its os module has copy_file_range, lseek whences and fallocate). */
function py(code: string, ...args: string[]): string {
  return execFileSync('python3', ['-c', code, ...args], { encoding: 'utf8' }).trim();
}

const COPY = `
import os, sys
src = os.open(sys.argv[1], os.O_RDONLY)
dst = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT, 0o644)
left = int(sys.argv[3])
while left > 0:
    n = os.copy_file_range(src, dst, left)
    if n == 0: break
    left -= n
os.close(src); os.close(dst)
`;

test('copy_file_range through the kernel copies by reference: no object added, data equal, writes stay on their side', async () => {
  const size = 9 * MiB + 12345; // three chunks of 4 MiB, blocks of 1 MiB, a partial tail
  const data = Buffer.alloc(size);
  for (let i = 0; i + 4 <= size; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
  const src = join(mnt, 'src');
  const dst = join(mnt, 'dst');
  writeFileSync(src, data);
  const before = await objectCount();
  assert.ok(before >= 10, `the source is in S3 (${before} objects)`);
  py(COPY, src, dst, String(size));
  assert.equal(await objectCount(), before, 'the copy added no object');
  assert.equal(statSync(dst).size, size);
  assert.ok(readFileSync(dst).equals(data), 'the copy reads equal');
  assert.equal(statSync(dst).blocks, Math.ceil(size / 512), 'st_blocks counts the referenced bytes');

  // A write to the copy leaves the source alone, and the reverse.
  const fd = openSync(dst, 'r+');
  writeSync(fd, Buffer.alloc(1000, 0xab), 0, 1000, 5 * MiB);
  fsyncSync(fd);
  closeSync(fd);
  assert.ok(readFileSync(src).equals(data), 'source intact after a write to the copy');
  const fs2 = openSync(src, 'r+');
  writeSync(fs2, Buffer.alloc(1000, 0xcd), 0, 1000, 7);
  closeSync(fs2);
  const want = Buffer.from(data);
  want.fill(0xab, 5 * MiB, 5 * MiB + 1000);
  assert.ok(readFileSync(dst).equals(want), 'copy keeps its bytes after a write to the source');
});

test('a sparse file: st_blocks 0, SEEK_DATA/SEEK_HOLE find the written range, a punched hole reads zeros', () => {
  const f = join(mnt, 'sparse');
  const fd = openSync(f, 'w');
  closeSync(fd);
  const GiB = 2 ** 30;
  py('import os, sys; os.truncate(sys.argv[1], int(sys.argv[2]))', f, String(10 * GiB));
  assert.equal(statSync(f).size, 10 * GiB);
  assert.equal(statSync(f).blocks, 0, 'a sparse 10 GiB file holds no blocks');
  py('import os, sys\nfd = os.open(sys.argv[1], os.O_WRONLY)\nos.pwrite(fd, b"x" * 8192, 5 * 2**30)\nos.close(fd)', f);
  assert.equal(statSync(f).blocks, 16);
  const seeks = py(
    'import os, sys\nfd = os.open(sys.argv[1], os.O_RDONLY)\nd = os.lseek(fd, 0, os.SEEK_DATA)\nh = os.lseek(fd, d, os.SEEK_HOLE)\nprint(d, h, os.lseek(fd, 0, os.SEEK_HOLE))',
    f,
  );
  assert.equal(seeks, `${5 * GiB} ${5 * GiB + 8192} 0`);
  // Punch the middle of the written range (util-linux fallocate -p, i.e. PUNCH_HOLE|KEEP_SIZE).
  execFileSync('fallocate', ['-p', '-o', String(5 * GiB + 4096), '-l', '2048', f]);
  assert.equal(statSync(f).size, 10 * GiB);
  const back = py('import os, sys\nfd = os.open(sys.argv[1], os.O_RDONLY)\nb = os.pread(fd, 8192, 5 * 2**30)\nprint(b.count(b"x"), b[4096:6144].count(b"\\0"))', f);
  assert.equal(back, '6144 2048');
  assert.equal(statSync(f).blocks, 12);
});
