// The MDS daemon over its embedded store, against a real s3rver.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { S3Client, PutObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { MdsClient } from '../../mds/client.js';
import { startS3, type TestS3 } from '../support/s3.js';
import { tempDir } from '../support/tmp.js';
import { freePort } from '../support/ports.js';
import { cliPath, type Spawned } from '../support/process.js';
import { spawnSync } from 'node:child_process';
import type { CreateFsRequest } from '../../proto/gen/tierfs/mds/CreateFsRequest.js';
import { spawnMds, waitFor, isCode, type MdsReady } from './helpers.js';
import { blockKey } from '../../s3adaptor/keys.js';

const tmp = tempDir('tierfs-mds-emb-');
let s3: TestS3;
let mds: Spawned<MdsReady>;
let client: MdsClient;
let args: string[];

before(async () => {
  s3 = await startS3();
  const port = await freePort();
  args = ['--listen', `127.0.0.1:${port}`, '--data-dir', `${tmp.path}/data`,
    '--set', 'sessions.ttlMs=3000', '--set', 'sessions.checkIntervalMs=100', '--set', 'deletion.intervalMs=300',
    '--set', 'ids.chunkIdBundle=50'];
  mds = await spawnMds(args, tmp.path);
  client = new MdsClient([mds.info.address]);
});

after(async () => {
  client.close();
  await mds.stop();
  await s3.close();
  tmp.remove();
});

function fsReq(name: string, extra: Partial<CreateFsRequest> = {}): CreateFsRequest {
  return {
    name, fs_type: 's3',
    s3: { endpoint: s3.endpoint, bucket: s3.bucket, access_key: s3.accessKeyId, secret_key: s3.secretAccessKey, region: 'us-east-1', key_prefix: '' },
    ...extra,
  };
}

test('every CreateFs mistake gives its own error', async () => {
  await client.createFs(fsReq('taken'));
  const good = fsReq('x').s3!;
  const deadPort = await freePort();
  const cases: Array<[string, CreateFsRequest, string, RegExp]> = [
    ['empty name', fsReq(''), 'INVALID_ARGUMENT', /name is empty/],
    ['long name', fsReq('a'.repeat(64)), 'NAME_TOO_LONG', /at most 63/],
    ['bad characters', fsReq('a/b'), 'INVALID_ARGUMENT', /letters, digits/],
    ['exists', fsReq('taken'), 'EXISTS', /already exists/],
    ['fs type', fsReq('t1', { fs_type: 'volume' }), 'NOT_SUPPORTED', /fs_type "volume"/],
    ['no s3', fsReq('t2', { s3: null }), 'INVALID_ARGUMENT', /s3 settings are missing/],
    ['no endpoint', fsReq('t3', { s3: { ...good, endpoint: '' } }), 'INVALID_ARGUMENT', /endpoint is missing/],
    ['bad endpoint', fsReq('t4', { s3: { ...good, endpoint: 'not a url' } }), 'INVALID_ARGUMENT', /is not a URL/],
    ['no bucket', fsReq('t5', { s3: { ...good, bucket: '' } }), 'INVALID_ARGUMENT', /bucket is missing/],
    ['no access key', fsReq('t6', { s3: { ...good, access_key: '' } }), 'INVALID_ARGUMENT', /access key is missing/],
    ['no secret key', fsReq('t7', { s3: { ...good, secret_key: '' } }), 'INVALID_ARGUMENT', /secret key is missing/],
    ['block not power of two', fsReq('t8', { block_size: 3 * 1024 * 1024 }), 'INVALID_ARGUMENT', /not a power of two/],
    ['block too small', fsReq('t9', { block_size: 4096 }), 'INVALID_ARGUMENT', /out of range/],
    ['chunk not multiple', fsReq('t10', { block_size: 1 << 20, chunk_size: (1 << 20) * 3 + 65536 }), 'INVALID_ARGUMENT', /not a multiple/],
    ['chunk too big', fsReq('t11', { chunk_size: 2 * 1024 * 1024 * 1024 }), 'INVALID_ARGUMENT', /exceeds 1 GiB/],
    ['missing bucket', fsReq('t12', { s3: { ...good, bucket: 'no-such-bucket' } }), 'NOT_FOUND', /does not exist at/],
    ['unreachable s3', fsReq('t13', { s3: { ...good, endpoint: `http://127.0.0.1:${deadPort}` } }), 'UNAVAILABLE', /cannot reach S3/],
  ];
  const messages = new Set<string>();
  for (const [what, req, code, re] of cases) {
    await assert.rejects(client.createFs(req), (err: unknown) => {
      assert.ok(isCode(code, re)(err), what);
      messages.add((err as Error).message);
      return true;
    }, what);
  }
  assert.equal(messages.size, cases.length, 'each mistake has a distinct message');
  assert.deepEqual((await client.listFs()).map((f) => f.name), ['taken']);
});

test('filesystems and chunk ids survive a restart (clean and kill -9)', async () => {
  const fs = await client.createFs(fsReq('persist', { block_size: 1 << 20 }));
  assert.equal(fs.block_size, 1 << 20);
  assert.equal(fs.chunk_size, 64 * 1024 * 1024);
  assert.equal(fs.root_ino, 1);
  const defaults = await client.createFs(fsReq('defaults'));
  assert.equal(defaults.block_size, 4 * 1024 * 1024);
  assert.notEqual(defaults.fs_id, fs.fs_id);
  const seen = new Set<number>();
  const take = async (n: number) => {
    const r = await client.allocateChunkIds(fs.fs_id, n);
    assert.equal(r.count, n);
    for (let i = 0; i < n; i++) {
      assert.equal(seen.has(r.start + i), false, `chunk id ${r.start + i} repeated`);
      seen.add(r.start + i);
    }
  };
  for (let i = 0; i < 5; i++) await take(7);
  for (const hard of [false, true]) {
    if (hard) await mds.kill9();
    else await mds.stop();
    mds = await spawnMds(args, tmp.path, hard ? 'mds-3' : 'mds-2');
    const info = await client.getFsInfo('persist');
    assert.equal(info.fs_id, fs.fs_id);
    assert.equal(info.block_size, 1 << 20);
    assert.deepEqual(await client.getFsInfo(fs.fs_id), info);
    for (let i = 0; i < 5; i++) await take(3);
    await take(120); // larger than a bundle
  }
  await assert.rejects(client.allocateChunkIds(99_999, 1), isCode('NOT_FOUND'));
  const again = await client.createFs(fsReq('after-restart'));
  assert.ok(again.fs_id > defaults.fs_id, 'fs ids are not reused after restart');
});

test('mounts: DeleteFs refused while mounted, sessions expire, usage from refreshes', async () => {
  const fs = await client.createFs(fsReq('mounted'));
  const a = await client.mountFs('mounted', { host: 'h1', path: '/mnt/a', pid: 11 });
  assert.equal(a.ttlMs, 3000);
  assert.equal(a.fs.name, 'mounted');
  const b = await client.mountFs('mounted', { host: 'h2', path: '/mnt/b', pid: 22 });
  await assert.rejects(client.deleteFs('mounted'), isCode('BUSY', /mounted/));
  await assert.rejects(client.mountFs('nope', { host: 'h', path: '/m', pid: 1 }), isCode('NOT_FOUND'));

  await client.umountFs('mounted', b.sessionId);
  await assert.rejects(client.umountFs('mounted', b.sessionId), isCode('NOT_FOUND'));
  // Keep `a` alive past the TTL with refreshes, reporting usage.
  for (let i = 0; i < 10; i++) {
    await client.refreshSession(a.sessionId, { usedBytesDelta: 1000, inodeDelta: 2 });
    await new Promise((r) => setTimeout(r, 400));
  }
  await client.refreshSession(a.sessionId, { freedBytes: 500 });
  let info = await client.getFsInfo('mounted');
  assert.deepEqual(info.mounts.map((m) => [m.host, m.path, m.pid]), [['h1', '/mnt/a', 11]]);
  assert.equal(info.used_bytes, 9500);
  assert.equal(info.inode_count, 20);
  // Then let it go silent: the session expires and the fs can be deleted.
  info = await waitFor('session expiry', async () => {
    const i = await client.getFsInfo('mounted');
    return i.mounts.length === 0 ? i : null;
  });
  await assert.rejects(client.refreshSession(a.sessionId), isCode('NOT_FOUND', /unknown or expired/));

  // Objects of this fs go away after DeleteFs; other objects in the bucket stay.
  const s3c = new S3Client({
    endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
  });
  try {
    const mine = [blockKey(fs.fs_id, 5, 17, 0, 0), blockKey(fs.fs_id, 9, 18, 2, 1)];
    // Another fs's block, a key with a wrong hash prefix and a foreign object all stay.
    const others = [blockKey(fs.fs_id + 1000, 5, 17, 0, 0), `zz_${fs.fs_id}_5_17_0_0`, 'unrelated-object'];
    for (const Key of [...mine, ...others]) await s3c.send(new PutObjectCommand({ Bucket: s3.bucket, Key, Body: 'x' }));
    await client.deleteFs('mounted');
    await assert.rejects(client.getFsInfo('mounted'), isCode('NOT_FOUND'));
    await waitFor('objects of the deleted fs removed', async () => {
      const keys = ((await s3c.send(new ListObjectsV2Command({ Bucket: s3.bucket }))).Contents ?? []).map((o) => o.Key);
      return mine.every((k) => !keys.includes(k)) && others.every((k) => keys.includes(k));
    });
  } finally {
    s3c.destroy();
  }
  await assert.rejects(client.deleteFs('mounted'), isCode('NOT_FOUND'));
});

test('health and cluster status of a single embedded MDS', async () => {
  const st = await client.clusterStatus();
  assert.equal(st.mds.length, 1);
  assert.equal(st.mds[0]!.leader, true);
  assert.equal(st.mds[0]!.address, mds.info.address);
  assert.ok(st.filesystems.some((f) => f.name === 'persist'));
  assert.ok(st.filesystems.every((f) => f.s3?.secret_key === ''), 'ClusterStatus carries no secrets');
  assert.ok((await client.listFs()).every((f) => f.s3?.secret_key === '' && f.s3.access_key !== ''), 'nor does ListFs');
  assert.equal((await client.getFsInfo('persist')).s3?.secret_key, s3.secretAccessKey);
  const metrics = await (await fetch(`http://127.0.0.1:${mds.info.metricsPort}/metrics`)).text();
  assert.match(metrics, /tierfs_mds_rpc_total\{method="ClusterStatus",code="OK"/);
  assert.match(metrics, /tierfs_mds_is_leader\{component="mds"\} 1/);
  assert.match(metrics, /tierfs_mds_filesystems\{component="mds"\} [1-9]/);
});

test('tierfs fs create/list/info/delete against the daemon', async () => {
  // The secret travels in the environment, never in argv (ps shows argv to every user).
  const run = (...argv: string[]) => {
    const env = { ...process.env, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey };
    const res = spawnSync(process.execPath, [cliPath, 'fs', ...argv, '--mds', mds.info.address], { encoding: 'utf8', env });
    return { code: res.status, out: res.stdout, err: res.stderr };
  };
  const created = run('create', 'clifs', '--s3-endpoint', s3.endpoint, '--bucket', s3.bucket, '--access-key', s3.accessKeyId,
    '--block-size', '1MiB', '--chunk-size', '16M', '--key-prefix', 'p/', '--json');
  assert.equal(created.code, 0, created.err);
  const fs = JSON.parse(created.out) as { name: string; block_size: number; chunk_size: number; s3: { secret_key: string; key_prefix: string } };
  assert.equal(fs.block_size, 1 << 20);
  assert.equal(fs.chunk_size, 16 << 20);
  assert.equal(fs.s3.key_prefix, 'p/');
  assert.equal(fs.s3.secret_key, '', 'CreateFs does not send the secret back');
  const table = run('list');
  assert.equal(table.code, 0);
  assert.match(table.out, /clifs[^\n]*1 MiB[^\n]*16 MiB/);
  const dup = run('create', 'clifs', '--s3-endpoint', s3.endpoint, '--bucket', s3.bucket, '--access-key', 'k');
  assert.equal(dup.code, 1);
  assert.match(dup.err, /EXISTS/);
  assert.equal(run('delete', 'clifs').code, 0);
  const gone = run('info', 'clifs');
  assert.equal(gone.code, 1);
  assert.match(gone.err, /NOT_FOUND/);
});
