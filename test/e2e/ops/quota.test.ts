// Directory quotas through a real mount (MDS + 3 metaservers + s3rver + `tierfs mount`): EDQUOT
// at the byte and inode limits, nested quotas, a rename and a link into a full directory, df
// inside a quota directory, and usage exact after kill -9 of the metaserver leading the
// copyset that keeps the quotas.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, renameSync, statfsSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { constants } from 'node:os';
import { after, before, describe, test } from 'node:test';
import { RemoteMetaClient } from '../../../metaserver/client.js';
import { ROOT_INO } from '../../../metaserver/meta-client.js';
import { leaderOf } from '../../metaserver/cluster-support.js';
import { cliPath } from '../../support/process.js';
import { adminRequest } from '../../../gateway/admin.js';
import { startCluster, waitFor, type TestCluster } from '../support/cluster.js';

const KiB = 1024;
const MiB = 1024 * 1024;

function tierfs(cluster: TestCluster, ...args: string[]): string {
  return execFileSync(process.execPath, [cliPath, ...args, '--fs', cluster.fsName, '--mds', cluster.mds.info.address], { encoding: 'utf8' });
}

interface QuotaRow { path: string; ino: number; maxBytes: number; maxInodes: number; usedBytes: number; usedInodes: number }

function quotas(cluster: TestCluster): Map<string, QuotaRow> {
  return new Map((JSON.parse(tierfs(cluster, 'quota', 'list', '--json')) as QuotaRow[]).map((q) => [q.path, q]));
}

function expectEdquot(fn: () => void, what: string): void {
  // Node has no name for errno 122: it reports "Unknown system error -122".
  assert.throws(fn, (err: NodeJS.ErrnoException) => err.code === 'EDQUOT' || err.errno === -constants.errno.EDQUOT || /-122\b/.test(err.message), `${what} should fail with EDQUOT`);
}


describe('directory quotas', () => {
  let cluster: TestCluster;
  let mnt = '';
  let adminSocket = '';
  /** The mount reads the limits again every second: wait until it knows `n` quotas. */
  const seenByMount = (n: number) =>
    waitFor(`the mount knows ${n} quotas`, async () => ((await adminRequest(adminSocket, 'stats', 10_000)) as { gateway: { quotas: number } }).gateway.quotas === n, 20_000);

  before(async () => {
    cluster = await startCluster('quota');
    const m = await cluster.mount({ name: 'mnt', cacheTimeoutSec: 0 });
    mnt = m.mountpoint;
    adminSocket = m.proc.info.adminSocket;
  });
  after(async () => {
    await cluster?.close();
  });

  test('bytes: writes up to the limit pass, the write past it fails with EDQUOT; df shows the quota', async () => {
    mkdirSync(join(mnt, 'b'));
    writeFileSync(join(mnt, 'b', 'before'), Buffer.alloc(100 * KiB, 1)); // counted by quota set
    tierfs(cluster, 'quota', 'set', '--path', '/b', '--bytes', '2MiB');
    assert.equal(quotas(cluster).get('/b')?.usedBytes, 100 * KiB);
    await seenByMount(1);
    writeFileSync(join(mnt, 'b', 'one'), Buffer.alloc(MiB, 2));
    expectEdquot(() => writeFileSync(join(mnt, 'b', 'two'), Buffer.alloc(MiB, 3)), 'a write past 2 MiB');
    const df = statfsSync(join(mnt, 'b'));
    assert.equal(df.blocks * df.bsize, 2 * MiB, 'df inside the directory shows the quota as the size');
    assert.ok(df.bfree < df.blocks, 'and its usage');
    unlinkSync(join(mnt, 'b', 'two'));
    await waitFor('usage sent', () => quotas(cluster).get('/b')?.usedBytes === 100 * KiB + MiB, 30_000);
    assert.equal(quotas(cluster).get('/b')?.usedInodes, 2);
  });

  test('inodes: creates, mkdir and symlink stop at the limit', async () => {
    mkdirSync(join(mnt, 'i'));
    tierfs(cluster, 'quota', 'set', '--path', '/i', '--inodes', '3');
    await seenByMount(2);
    writeFileSync(join(mnt, 'i', 'f1'), 'x');
    mkdirSync(join(mnt, 'i', 'd1'));
    symlinkSync('f1', join(mnt, 'i', 'l1'));
    expectEdquot(() => writeFileSync(join(mnt, 'i', 'f2'), 'y'), 'a 4th create');
    expectEdquot(() => mkdirSync(join(mnt, 'i', 'd1', 'deeper')), 'a mkdir below');
    unlinkSync(join(mnt, 'i', 'l1'));
    writeFileSync(join(mnt, 'i', 'f2'), 'y');
  });

  test('nested: the inner byte limit and the outer inode limit both apply', async () => {
    mkdirSync(join(mnt, 'outer'));
    mkdirSync(join(mnt, 'outer', 'inner'));
    tierfs(cluster, 'quota', 'set', '--path', '/outer', '--inodes', '4');
    tierfs(cluster, 'quota', 'set', '--path', '/outer/inner', '--bytes', '1MiB');
    await seenByMount(4);
    writeFileSync(join(mnt, 'outer', 'inner', 'a'), Buffer.alloc(600 * KiB));
    expectEdquot(() => writeFileSync(join(mnt, 'outer', 'inner', 'b'), Buffer.alloc(600 * KiB)), 'a write past the inner byte limit');
    // 'b' was created before its write failed: inner, a, b = 3 of the outer's 4 inodes.
    writeFileSync(join(mnt, 'outer', 'c'), '');
    expectEdquot(() => writeFileSync(join(mnt, 'outer', 'inner', 'd'), ''), 'a create past the outer inode limit');
    await waitFor('usage sent', () => quotas(cluster).get('/outer')?.usedInodes === 4, 30_000);
    // The kernel cuts the write in pieces: the ones within the limit are written.
    const inner = quotas(cluster).get('/outer/inner')!.usedBytes;
    assert.ok(inner >= 600 * KiB && inner <= MiB, `inner usage ${inner} within the limit`);
  });

  test('rename and link into a full directory fail with EDQUOT; within it they pass', async () => {
    mkdirSync(join(mnt, 'full'));
    mkdirSync(join(mnt, 'free'));
    tierfs(cluster, 'quota', 'set', '--path', '/full', '--bytes', '1MiB');
    await seenByMount(5);
    writeFileSync(join(mnt, 'full', 'half'), Buffer.alloc(600 * KiB));
    writeFileSync(join(mnt, 'free', 'big'), Buffer.alloc(600 * KiB));
    expectEdquot(() => renameSync(join(mnt, 'free', 'big'), join(mnt, 'full', 'big')), 'a rename into the directory');
    expectEdquot(() => linkSync(join(mnt, 'free', 'big'), join(mnt, 'full', 'big-link')), 'a hard link into the directory');
    mkdirSync(join(mnt, 'free', 'tree'));
    writeFileSync(join(mnt, 'free', 'tree', 'leaf'), Buffer.alloc(500 * KiB));
    expectEdquot(() => renameSync(join(mnt, 'free', 'tree'), join(mnt, 'full', 'tree')), 'moving a directory whose files pass the limit');
    renameSync(join(mnt, 'full', 'half'), join(mnt, 'full', 'renamed'));
    // Moving out frees the space.
    renameSync(join(mnt, 'full', 'renamed'), join(mnt, 'free', 'out'));
    renameSync(join(mnt, 'free', 'big'), join(mnt, 'full', 'big'));
    await waitFor('usage sent', () => quotas(cluster).get('/full')?.usedBytes === 600 * KiB, 30_000);
  });

  test('usage is exact after kill -9 of the metaserver leading the quota copyset, and check agrees with a recount', async (t) => {
    mkdirSync(join(mnt, 'k'));
    tierfs(cluster, 'quota', 'set', '--path', '/k', '--bytes', '100MiB', '--inodes', '1000');
    await seenByMount(6);
    for (let i = 0; i < 5; i++) writeFileSync(join(mnt, 'k', `f${i}`), Buffer.alloc(10 * KiB * (i + 1)));
    await waitFor('usage sent', () => quotas(cluster).get('/k')?.usedInodes === 5, 30_000);

    const meta = new RemoteMetaClient({ fsId: (await cluster.client.getFsInfo(cluster.fsName)).fs_id, mds: cluster.client });
    const route = await meta.router.route(ROOT_INO);
    await meta.close();
    const leader = await leaderOf(route.peers, route.poolId, route.copysetId);
    const victim = cluster.metas.findIndex((m) => m.address === leader);
    t.diagnostic(`killing ${leader}, leader of copyset ${route.poolId}.${route.copysetId}`);
    await cluster.metas[victim]!.proc.kill9();
    // Keep writing through the election.
    for (let i = 5; i < 10; i++) writeFileSync(join(mnt, 'k', `f${i}`), Buffer.alloc(10 * KiB * (i + 1)));
    const bytes = Array.from({ length: 10 }, (_, i) => 10 * KiB * (i + 1)).reduce((a, b) => a + b, 0);
    await waitFor('usage sent after the kill', () => quotas(cluster).get('/k')?.usedInodes === 10, 60_000);
    assert.equal(quotas(cluster).get('/k')?.usedBytes, bytes);
    const check = JSON.parse(tierfs(cluster, 'quota', 'check', '--json')) as Array<{ path: string; ok: boolean }>;
    assert.deepEqual(check.filter((r) => !r.ok), [], 'every quota matches a recount of its tree');
  });

  test('check --repair fixes drift; delete removes the limit', async () => {
    // Drift made on purpose: usage set wrong behind the mount's back.
    const meta = new RemoteMetaClient({ fsId: (await cluster.client.getFsInfo(cluster.fsName)).fs_id, mds: cluster.client });
    try {
      const { QuotaClient } = await import('../../../metaserver/quota-client.js');
      const ino = (await meta.lookup(ROOT_INO, 'i')).ino;
      await new QuotaClient(meta).setUsage(ino, { bytes: 5, inodes: 99 });
    } finally {
      await meta.close();
    }
    assert.throws(() => tierfs(cluster, 'quota', 'check', '--path', '/i'), (err: { status?: number; stdout?: string }) => err.status === 1 && /DRIFT/.test(err.stdout ?? ''));
    tierfs(cluster, 'quota', 'check', '--path', '/i', '--repair');
    assert.deepEqual([quotas(cluster).get('/i')?.usedBytes, quotas(cluster).get('/i')?.usedInodes], [2, 3]);
    tierfs(cluster, 'quota', 'delete', '--path', '/i');
    assert.equal(quotas(cluster).has('/i'), false);
    await seenByMount(5);
    for (let i = 0; i < 3; i++) writeFileSync(join(mnt, 'i', `more${i}`), '');
  });

  test('summary counts a tree through the metaservers; info shows a file\'s slices and objects', () => {
    const env = { ...process.env, TIERFS_RUN_DIR: join(cluster.dir, 'run') };
    const run = (...args: string[]) => JSON.parse(execFileSync(process.execPath, [cliPath, ...args, '--mds', cluster.mds.info.address, '--json'], { encoding: 'utf8', env })) as Record<string, unknown>;
    mkdirSync(join(mnt, 's', 'sub'), { recursive: true });
    writeFileSync(join(mnt, 's', 'a'), Buffer.alloc(3000));
    writeFileSync(join(mnt, 's', 'sub', 'b'), Buffer.alloc(5000));
    symlinkSync('a', join(mnt, 's', 'l'));
    const sum = run('summary', join(mnt, 's'));
    assert.deepEqual([sum.files, sum.dirs, sum.symlinks, sum.bytes], [2, 1, 1, 8000]);
    const info = run('info', join(mnt, 's', 'sub', 'b')) as { path: string; type: string; size: number; objects: Array<{ key: string; cached: boolean }>; chunks: unknown[] };
    assert.equal(info.path, '/s/sub/b');
    assert.equal(info.type, 'file');
    assert.equal(info.size, 5000);
    assert.equal(info.chunks.length, 1);
    assert.equal(info.objects.length, 1);
    assert.match(info.objects[0]!.key, /^quota\/[0-9a-f]{2}_\d+_\d+_\d+_0_0$/);
  });
});
