// The VFS's data operations over real parts (metaserver gRPC, S3Adaptor + disk cache, s3rver,
// the kernel through fuse/): copy_file_range by reference (no new objects in the bucket, the
// data equal, a later write to the copy leaves the source intact), fallocate PUNCH_HOLE,
// SEEK_HOLE and st_blocks of a sparse file, RENAME_NOREPLACE through the real metaserver.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { adminRequest } from '../../../gateway/admin.js';
import { cliPath, spawnProcess, type Spawned } from '../../support/process.js';
import { startS3, type TestS3 } from '../../support/s3.js';
import { FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, RENAME_NOREPLACE, SEEK_DATA, SEEK_HOLE, py, syscall } from '../../support/syscalls.js';
import { tempDir } from '../../support/tmp.js';
import { forceUnmount } from '../../gateway/support/mounted.js';

const entry = join(dirname(fileURLToPath(import.meta.url)), 'support', 'real-parts-mount.js');
const MiB = 1 << 20;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('data operations over real parts (s3rver, metaserver, kernel)', () => {
  let s3: TestS3 | undefined;
  let proc: Spawned | undefined;
  let s3c: S3Client | undefined;
  const tmp = tempDir('tierfs-gw-dataops-');
  const mountpoint = join(tmp.path, 'mnt');
  const adminSocket = join(tmp.path, 'admin.sock');
  const p = (name: string) => join(mountpoint, name);

  before(async () => {
    mkdirSync(mountpoint);
    s3 = await startS3('tierfs-gw-dataops');
    s3c = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
    // Write-through: a close puts the data in S3, so the bucket shows what each step stored.
    proc = await spawnProcess(process.execPath, [entry, mountpoint, adminSocket, s3.endpoint, s3.bucket, join(tmp.path, 'cache')], {
      logFile: join(tmp.path, 'gateway.log'), readyTimeoutMs: 60_000,
    }).catch((err: unknown) => {
      forceUnmount(mountpoint);
      throw err;
    });
  });
  after(async () => {
    s3c?.destroy();
    await proc?.stop(30_000).catch(() => {});
    forceUnmount(mountpoint);
    await s3?.close();
    tmp.remove();
  });

  const objectCount = async (): Promise<number> => {
    let n = 0;
    let token: string | undefined;
    do {
      const r = await s3c!.send(new ListObjectsV2Command({ Bucket: s3!.bucket, ContinuationToken: token }));
      n += r.KeyCount ?? 0;
      token = r.NextContinuationToken;
    } while (token);
    return n;
  };

  /** The file's bytes from S3 through the gateway: its disk cache and the kernel's pages bypassed. */
  const uncachedSha = (path: string): string => {
    const evict = spawnSync(process.execPath, [cliPath, 'cache', 'evict', '--admin-socket', adminSocket, '--json'], { encoding: 'utf8' });
    assert.equal(evict.status, 0, evict.stderr);
    const dd = spawnSync('dd', [`if=${path}`, 'bs=1M', 'iflag=direct', 'status=none'], { maxBuffer: 64 * MiB });
    assert.equal(dd.status, 0, dd.stderr?.toString());
    return sha(dd.stdout);
  };

  test('copy_file_range copies by reference: no new objects, equal data, the source survives a write to the copy', async () => {
    const body = randomBytes(8 * MiB + 12345);
    writeFileSync(p('src'), body);
    const before = await objectCount();
    assert.ok(before >= 9, `the source is in S3 (${before} objects)`);
    assert.equal(syscall(`copy_range(${py(p('src'))}, ${py(p('dst'))}, 0, 0, ${body.length})`), body.length);
    assert.equal(await objectCount(), before, 'the copy stored no object');
    assert.equal(statSync(p('dst')).size, body.length);
    assert.equal(uncachedSha(p('dst')), sha(body));

    const fd = openSync(p('dst'), 'r+');
    writeSync(fd, Buffer.alloc(4096, 0xee), 0, 4096, MiB);
    closeSync(fd);
    assert.equal(uncachedSha(p('src')), sha(body), 'the source is unchanged');
    const changed = Buffer.from(body);
    changed.fill(0xee, MiB, MiB + 4096);
    assert.equal(uncachedSha(p('dst')), sha(changed));
  });

  test('PUNCH_HOLE frees the range, SEEK_HOLE finds it, a sparse file holds no blocks', () => {
    const f = p('holes');
    writeFileSync(f, randomBytes(4 * MiB));
    assert.equal(statSync(f).blocks, 8192);
    assert.equal(syscall(`fallocate(${py(f)}, ${FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE}, ${MiB}, ${MiB})`), 0);
    assert.equal(statSync(f).size, 4 * MiB);
    assert.equal(statSync(f).blocks, 6144);
    assert.equal(syscall(`seek(${py(f)}, 0, ${SEEK_HOLE})`), MiB);
    assert.equal(syscall(`seek(${py(f)}, ${MiB}, ${SEEK_DATA})`), 2 * MiB);
    const s = p('sparse');
    writeFileSync(s, '');
    truncateSync(s, 10 * 1024 * MiB);
    assert.equal(statSync(s).blocks, 0, 'a sparse 10 GiB file holds no blocks');
  });

  test('pages a write left in the kernel stay there at the next open (own commits are known as own)', async () => {
    // The data path commits slices through the MetaClient and the VFS through op-stats'
    // counting proxy of it: if those commits passed for another mount's, every open after a
    // write would drop the file's pages and warm reads would go to the daemon.
    const f = p('warm');
    const body = randomBytes(8 * MiB + 4096);
    const fd = openSync(f, 'w');
    for (let off = 0; off < body.length; off += MiB) writeSync(fd, body, off, Math.min(MiB, body.length - off));
    closeSync(fd);
    const reads = async () => {
      const s = (await adminRequest(adminSocket, 'stats', 30_000)) as { fuse: { ops: Record<string, number> } };
      return s.fuse.ops.READ ?? 0;
    };
    const before = await reads();
    assert.equal(sha(readFileSync(f)), sha(body));
    assert.equal(sha(readFileSync(f)), sha(body));
    assert.equal(await reads(), before, 'no READ reached the daemon: both opens kept the written pages');
  });

  test('RENAME_NOREPLACE through the real metaserver', () => {
    writeFileSync(p('a'), 'a');
    writeFileSync(p('b'), 'b');
    assert.deepEqual(syscall(`renameat2(${py(p('a'))}, ${py(p('b'))}, ${RENAME_NOREPLACE})`), { errno: 'EEXIST' });
    assert.equal(syscall(`renameat2(${py(p('a'))}, ${py(p('c'))}, ${RENAME_NOREPLACE})`), 0);
  });
});
