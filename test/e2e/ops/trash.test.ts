// The recycle bin through a real mount: a deleted file goes to a hidden /.trash, `tierfs trash
// restore` brings it back byte-identical (or refuses a taken name, or restores --to another
// directory), and with a short expiry the mount purges it together with its S3 objects.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { adminRequest } from '../../../gateway/admin.js';
import type { OpCount } from '../../../gateway/op-stats.js';
import { cliPath } from '../../support/process.js';
import { startCluster, waitFor, type TestCluster } from '../support/cluster.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Listed { entry: string; path: string | null; size: number; dir: boolean; deletedAt: string }

describe('recycle bin', () => {
  let cluster: TestCluster;
  let mnt = '';
  let shortMnt = '';
  let adminSocket = '';
  let s3: S3Client;

  const tierfs = (fs: string, ...args: string[]): string =>
    execFileSync(process.execPath, [cliPath, ...args, '--fs', fs, '--mds', cluster.mds.info.address], { encoding: 'utf8' });
  const list = (fs: string): Listed[] => JSON.parse(tierfs(fs, 'trash', 'list', '--json')) as Listed[];
  const objects = async (prefix: string): Promise<number> => {
    let n = 0;
    let token: string | undefined;
    do {
      const r = await s3.send(new ListObjectsV2Command({ Bucket: cluster.s3.bucket, Prefix: prefix, ContinuationToken: token }));
      n += r.KeyCount ?? 0;
      token = r.NextContinuationToken;
    } while (token);
    return n;
  };
  const createFs = (name: string, trashDays: number) =>
    cluster.client.createFs({
      name, fs_type: 's3', block_size: 1 << 20, chunk_size: 4 << 20, trash_days: trashDays,
      s3: { endpoint: cluster.s3.endpoint, bucket: cluster.s3.bucket, access_key: cluster.s3.accessKeyId, secret_key: cluster.s3.secretAccessKey, region: 'us-east-1', key_prefix: `${name}/` },
    });
  /** The mount's calls so far: from the kernel (`fuse`) and into the metaserver (`meta`), by method. */
  const calls = async (): Promise<{ fuse: Record<string, number>; meta: Record<string, number> }> => {
    const stats = (await adminRequest(adminSocket, 'stats', 10_000)) as { ops: { fuse: Record<string, OpCount>; meta: Record<string, OpCount> } };
    const counts = (ops: Record<string, OpCount>) => Object.fromEntries(Object.entries(ops).map(([k, v]) => [k, v.count]));
    return { fuse: counts(stats.ops.fuse), meta: counts(stats.ops.meta) };
  };
  /** What `fn` added to the counts. */
  const added = async (fn: () => void) => {
    const before = await calls();
    fn();
    const after = await calls();
    const diff = (a: Record<string, number>, b: Record<string, number>) =>
      Object.fromEntries(Object.keys(b).map((k) => [k, b[k]! - (a[k] ?? 0)]).filter(([, n]) => n !== 0));
    return { fuse: diff(before.fuse, after.fuse), meta: diff(before.meta, after.meta) };
  };

  before(async () => {
    cluster = await startCluster('trash');
    s3 = new S3Client({ endpoint: cluster.s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: cluster.s3.accessKeyId, secretAccessKey: cluster.s3.secretAccessKey } });
    await createFs('bin', 1);
    await createFs('short', 20 / 86_400); // 20 seconds
    const m = await cluster.mount({ name: 'mnt', fs: 'bin', cacheTimeoutSec: 0 });
    mnt = m.mountpoint;
    adminSocket = m.proc.info.adminSocket;
    shortMnt = (await cluster.mount({ name: 'short', fs: 'short', cacheTimeoutSec: 0, extraArgs: ['--trash-sweep', '1'] })).mountpoint;
  });
  after(async () => {
    s3?.destroy();
    await cluster?.close();
  });

  test('a deleted file is in the hidden bin and restores byte-identical', () => {
    mkdirSync(join(mnt, 'docs'));
    const body = randomBytes((5 << 20) + 777); // several chunks and slices
    writeFileSync(join(mnt, 'docs', 'report'), body);
    unlinkSync(join(mnt, 'docs', 'report'));
    assert.equal(existsSync(join(mnt, 'docs', 'report')), false);
    assert.ok(!readdirSync(mnt).includes('.trash'), '/.trash is not listed');
    const entries = list('bin');
    assert.equal(entries.length, 1);
    assert.equal(entries[0]!.path, '/docs/report');
    assert.equal(entries[0]!.size, body.length);
    tierfs('bin', 'trash', 'restore', '/docs/report');
    assert.equal(sha(readFileSync(join(mnt, 'docs', 'report'))), sha(body));
    assert.equal(list('bin').length, 0);
  });

  test('a taken name is refused with a clear message; --to restores elsewhere; a deleted directory comes back', () => {
    writeFileSync(join(mnt, 'docs', 'note'), 'old');
    unlinkSync(join(mnt, 'docs', 'note'));
    writeFileSync(join(mnt, 'docs', 'note'), 'new');
    assert.throws(
      () => tierfs('bin', 'trash', 'restore', '/docs/note'),
      (err: { stderr?: string }) => /cannot restore \/docs\/note: the name is taken/.test(err.stderr ?? ''),
    );
    mkdirSync(join(mnt, 'elsewhere'));
    tierfs('bin', 'trash', 'restore', '/docs/note', '--to', '/elsewhere');
    assert.equal(readFileSync(join(mnt, 'elsewhere', 'note'), 'utf8'), 'old');
    assert.equal(readFileSync(join(mnt, 'docs', 'note'), 'utf8'), 'new');

    mkdirSync(join(mnt, 'tree'));
    writeFileSync(join(mnt, 'tree', 'leaf'), 'leaf');
    rmSync(join(mnt, 'tree'), { recursive: true });
    assert.deepEqual(list('bin').map((e) => e.path).sort(), ['/tree', '/tree/leaf']);
    tierfs('bin', 'trash', 'restore', '/tree/leaf', '/tree');
    assert.equal(readFileSync(join(mnt, 'tree', 'leaf'), 'utf8'), 'leaf');
  });

  test('an unlink or rmdir into the bin is one metadata call of the mount (no lookup, getattr or rename first)', async () => {
    mkdirSync(join(mnt, 'calls'));
    writeFileSync(join(mnt, 'calls', 'f'), 'x');
    mkdirSync(join(mnt, 'calls', 'd'));
    for (const [what, fn] of [['unlink', () => unlinkSync(join(mnt, 'calls', 'f'))], ['rmdir', () => rmdirSync(join(mnt, 'calls', 'd'))]] as const) {
      const { fuse, meta } = await added(fn);
      // With 0 s caches the kernel looks the name up first (a lookup and a getattr of its own).
      const { lookup = 0, getInode = 0, ...rest } = meta;
      assert.deepEqual(rest, { removeToTrash: 1 }, `${what}: ${JSON.stringify(meta)}`);
      assert.equal(lookup, fuse.lookup ?? 0, `${what}: lookups only for the kernel's: ${JSON.stringify({ fuse, meta })}`);
      assert.ok(getInode <= (fuse.lookup ?? 0) + (fuse.getattr ?? 0), `${what}: ${JSON.stringify({ fuse, meta })}`);
    }
    assert.deepEqual(list('bin').map((e) => e.path).sort(), ['/calls/d', '/calls/f']);
    tierfs('bin', 'trash', 'purge');
  });

  test('purge removes entries for good', () => {
    writeFileSync(join(mnt, 'gone'), 'x');
    unlinkSync(join(mnt, 'gone'));
    assert.equal(list('bin').length, 1);
    tierfs('bin', 'trash', 'purge');
    assert.equal(list('bin').length, 0);
  });

  test('after the expiry the mount purges the entry and its objects', async () => {
    writeFileSync(join(shortMnt, 'temp'), randomBytes(3 << 20));
    const stored = await objects('short/');
    assert.ok(stored >= 3, `the file's blocks are in S3 (${stored})`);
    unlinkSync(join(shortMnt, 'temp'));
    assert.equal(list('short').length, 1);
    await waitFor('the expired entry purged', () => list('short').length === 0, 60_000, 500);
    await waitFor('its objects deleted', async () => (await objects('short/')) === 0, 60_000, 500);
  });
});
