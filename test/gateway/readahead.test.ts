// Reads through the mount: a wider kernel readahead window (several 128 KiB FUSE reads in
// flight), and a deadline that answers a stuck read before fuse-native's own timeout.
import assert from 'node:assert/strict';
import { readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { bdiName } from '../../gateway/readahead.js';
import { startMemoryMount, type TestMount } from './support/mounted.js';

test('bdiName decodes Linux device numbers like glibc major()/minor()', () => {
  assert.equal(bdiName(42), '0:42');
  assert.equal(bdiName((259 << 8) | 3), '259:3');
  // minor 0x12345: low byte in bits 0-7, the rest from bit 20 on (dev = ... | (minor & ~0xff) << 12)
  assert.equal(bdiName(0x45 | (8 << 8) | (0x123 << 20)), '8:74565');
});

let mount: TestMount | null = null;
after(async () => {
  await mount?.stop();
});

test('a mount runs with a 4096 KiB readahead window', async () => {
  mount = await startMemoryMount(1);
  const path = `/sys/class/bdi/${bdiName(statSync(mount.mountpoint).dev)}/read_ahead_kb`;
  assert.equal(readFileSync(path, 'utf8').trim(), '4096');
});

test('a read or write that outlives its deadline answers EIO, and cannot touch the reused buffer late', async () => {
  // op timeout 8 s -> deadline 3 s; storage answers after 6 s (between the two).
  const slow = await startMemoryMount(1, { TIERFS_TEST_SLOW_READ_MS: '6000', TIERFS_TEST_SLOW_WRITE_MS: '6000', TIERFS_TEST_OP_TIMEOUT_MS: '8000' });
  try {
    const f = join(slow.mountpoint, 'slow');
    const w0 = Date.now();
    assert.throws(() => writeFileSync(f, 'contents'), { code: 'EIO' });
    assert.ok(Date.now() - w0 < 7_500, 'the write was answered by the deadline');
    await new Promise((r) => setTimeout(r, 4_000)); // its late copy meets a detached (empty) buffer
    truncateSync(f, 8);
    const t0 = Date.now();
    assert.throws(() => readFileSync(f), { code: 'EIO' });
    assert.ok(Date.now() - t0 < 7_500, 'answered by the read deadline, not by the op timeout');
    await new Promise((r) => setTimeout(r, 4_000)); // the late copy happens now
    assert.equal(statSync(f).size, 8, 'the mount still answers');
    assert.equal(slow.proc.proc.exitCode, null, 'and its process is alive');
  } finally {
    await slow.stop();
  }
});
