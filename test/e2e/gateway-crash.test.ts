// kill -9 of the gateway: whatever was closed or fsynced before the crash survives it.
// Writeback case: S3 is down while writing, so every block is staged on the local disk and
// nowhere else; a new mount on the same cache dir must re-queue and upload the staged blocks,
// and a third mount on an empty cache dir (S3 only) proves they reached S3.
// Write-through case: the data is in S3 at close/fsync, so a mount on a fresh cache dir reads it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cliPath } from '../support/process.js';
import { forceUnmount, isMounted, startCluster, waitFor, type TestCluster } from './support/cluster.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Writes `files` through the mount (closed), plus one file fsynced and left open; returns all expected contents. */
function writeSet(mnt: string, prefix: string): { expected: Map<string, Buffer>; openFd: number } {
  const expected = new Map<string, Buffer>();
  // The last one spans chunks: its runs are flushed (staged or uploaded) while it is still being written.
  const sizes = [1, 4096, 100_000, (1 << 20) + 7, (3 << 20) + 333, (5 << 20) + 5];
  for (const [i, size] of sizes.entries()) {
    const body = randomBytes(size);
    writeFileSync(join(mnt, `${prefix}-closed-${i}`), body);
    expected.set(`${prefix}-closed-${i}`, body);
  }
  // Written in two steps (second one overlapping the first) and fsynced, never closed.
  const first = randomBytes(2 << 20);
  const second = randomBytes(500_000);
  const fd = openSync(join(mnt, `${prefix}-fsynced-open`), 'w');
  writeSync(fd, first, 0, first.length, 0);
  writeSync(fd, second, 0, second.length, (2 << 20) - 100_000);
  fsyncSync(fd);
  const whole = Buffer.alloc((2 << 20) - 100_000 + second.length);
  first.copy(whole, 0);
  second.copy(whole, (2 << 20) - 100_000);
  expected.set(`${prefix}-fsynced-open`, whole);
  return { expected, openFd: fd };
}

function assertSame(mnt: string, expected: Map<string, Buffer>, where: string): void {
  for (const [name, body] of expected) {
    const got = readFileSync(join(mnt, name));
    assert.equal(got.length, body.length, `${where}: size of ${name}`);
    assert.equal(sha(got), sha(body), `${where}: content of ${name}`);
  }
}

describe('gateway kill -9', () => {
  let cluster: TestCluster | undefined;
  before(async () => {
    cluster = await startCluster('gwcrash');
  });
  after(async () => {
    await cluster?.close();
  });

  test('writeback: data staged while S3 is down survives the crash and reaches S3', async () => {
    const c = cluster!;
    const cacheDir = join(c.dir, 'wb-cache');
    const first = await c.mount({ name: 'wb1', cacheDir, writeback: true });
    writeFileSync(join(first.mountpoint, 'warmup'), 'x'); // the fs is live before S3 goes away
    await c.s3.stop();
    const { expected, openFd } = writeSet(first.mountpoint, 'wb');
    await first.proc.kill9();
    try {
      closeSync(openFd); // the connection is dead; this only releases our descriptor
    } catch {
      /* ENOTCONN after the crash is expected */
    }
    forceUnmount(first.mountpoint);
    await waitFor('the dead mount to go away', () => !isMounted(first.mountpoint), 30_000);
    await c.s3.restart();

    const second = await c.mount({ name: 'wb2', cacheDir, writeback: true });
    assertSame(second.mountpoint, expected, 'new mount on the same cache dir');
    // Uploads of the re-queued blocks finish: flush waits for the write path to drain.
    const flush = spawnSync(process.execPath, [cliPath, 'cache', 'flush', '--admin-socket', second.proc.info.adminSocket], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(flush.status, 0, `cache flush: ${flush.stderr}`);
    await second.proc.stop(30_000);
    forceUnmount(second.mountpoint);

    const third = await c.mount({ name: 'wb3', cacheDir: join(c.dir, 'wb-fresh-cache') });
    assertSame(third.mountpoint, expected, 'mount on an empty cache dir (blocks from S3)');
  });

  test('write-through: closed and fsynced data survives the crash', async () => {
    const c = cluster!;
    const first = await c.mount({ name: 'wt1' });
    const { expected, openFd } = writeSet(first.mountpoint, 'wt');
    await first.proc.kill9();
    try {
      closeSync(openFd);
    } catch {
      /* ENOTCONN after the crash is expected */
    }
    forceUnmount(first.mountpoint);
    await waitFor('the dead mount to go away', () => !isMounted(first.mountpoint), 30_000);
    const second = await c.mount({ name: 'wt2', cacheDir: join(c.dir, 'wt-fresh-cache') });
    assertSame(second.mountpoint, expected, 'mount on an empty cache dir');
  });
});
