// Reads through the mount: a wider kernel readahead window (several FUSE reads in flight).
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
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
