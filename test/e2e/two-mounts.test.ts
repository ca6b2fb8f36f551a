// Two `tierfs mount` processes of one filesystem on one machine (own mount points and cache
// dirs): close-to-open consistency of file data between them, and namespace changes made on
// one visible on the other. Both mount with 0 s attr/entry timeouts so nothing waits on a
// kernel cache; namespace checks still poll, since visibility is not instantaneous by contract.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, closeSync, existsSync, openSync, writeSync, mkdirSync, readdirSync, readFileSync, renameSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startCluster, waitFor, type TestCluster } from './support/cluster.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('two mounts of one filesystem', () => {
  let cluster: TestCluster | undefined;
  let a = '';
  let b = '';

  before(async () => {
    cluster = await startCluster('twomounts');
    a = (await cluster.mount({ name: 'mntA', cacheTimeoutSec: 0 })).mountpoint;
    b = (await cluster.mount({ name: 'mntB', cacheTimeoutSec: 0 })).mountpoint;
  });
  after(async () => {
    await cluster?.close();
  });

  test('a file written and closed on A reads back identical on B', () => {
    const body = randomBytes((2 << 20) + 12_345); // spans blocks, ends mid-block
    writeFileSync(join(a, 'from-a'), body);
    const got = readFileSync(join(b, 'from-a'));
    assert.equal(got.length, body.length);
    assert.equal(sha(got), sha(body));
  });

  test('an overwrite on B is seen on A after close/open', () => {
    assert.ok(readFileSync(join(a, 'from-a')).length > 0, 'A has read the file once (and may cache it)');
    const body = randomBytes(300_000);
    writeFileSync(join(b, 'from-a'), body); // truncates + rewrites
    const got = readFileSync(join(a, 'from-a'));
    assert.equal(got.length, body.length);
    assert.equal(sha(got), sha(body));
  });

  // B's chunk-id batch was allocated after A's: A's later write must still win over B's data.
  test('a partial overwrite in the middle on A of data written by B is seen on B', () => {
    const base = randomBytes(1 << 20);
    writeFileSync(join(b, 'patched'), base);
    const patch = randomBytes(10_000);
    const fd = openSync(join(a, 'patched'), 'r+'); // in place, no truncation
    try {
      writeSync(fd, patch, 0, patch.length, 500_000);
    } finally {
      closeSync(fd);
    }
    const buf = Buffer.from(base);
    patch.copy(buf, 500_000);
    assert.equal(sha(readFileSync(join(b, 'patched'))), sha(buf));
  });

  test('truncate on B and append on A are seen on the other side', () => {
    const base = randomBytes(2 << 20);
    writeFileSync(join(a, 'shrinks'), base);
    assert.equal(sha(readFileSync(join(b, 'shrinks'))), sha(base));
    truncateSync(join(b, 'shrinks'), 700_000);
    assert.equal(sha(readFileSync(join(a, 'shrinks'))), sha(base.subarray(0, 700_000)));
    const tail = randomBytes(50_000);
    appendFileSync(join(a, 'shrinks'), tail);
    assert.equal(sha(readFileSync(join(b, 'shrinks'))), sha(Buffer.concat([base.subarray(0, 700_000), tail])));
    unlinkSync(join(a, 'shrinks'));
  });

  test('a writeback mount: another mount reads a just-closed file (waiting for the upload)', async () => {
    const c = (await cluster!.mount({ name: 'mntC', writeback: true, cacheTimeoutSec: 0 })).mountpoint;
    const body = randomBytes((3 << 20) + 99);
    writeFileSync(join(c, 'from-writeback'), body);
    const got = readFileSync(join(b, 'from-writeback'));
    assert.equal(got.length, body.length);
    assert.equal(sha(got), sha(body));
    unlinkSync(join(c, 'from-writeback'));
  });

  test('mkdir, rename and unlink on one mount are seen on the other', async () => {
    mkdirSync(join(a, 'dir1'));
    writeFileSync(join(a, 'dir1', 'f'), 'hello');
    await waitFor('dir1/f on B', () => existsSync(join(b, 'dir1', 'f')), 30_000);
    assert.equal(readFileSync(join(b, 'dir1', 'f'), 'utf8'), 'hello');

    renameSync(join(b, 'dir1'), join(b, 'dir2'));
    await waitFor('the rename on A', () => !existsSync(join(a, 'dir1')) && existsSync(join(a, 'dir2', 'f')), 30_000);
    assert.equal(readFileSync(join(a, 'dir2', 'f'), 'utf8'), 'hello');

    unlinkSync(join(a, 'dir2', 'f'));
    await waitFor('the unlink on B', () => !existsSync(join(b, 'dir2', 'f')), 30_000);
    assert.deepEqual(readdirSync(join(b, 'dir2')), []);
    assert.deepEqual(readdirSync(b).sort(), ['dir2', 'from-a', 'patched']);
  });
});
