// `tierfs mount` against a real cluster: an MDS (embedded store), three metaservers, s3rver.
// The mount registers with the MDS, serves files whose blocks land in S3, answers
// `tierfs cache stats|flush`, and `tierfs umount` flushes, deregisters and unmounts.
// (POSIX conformance over the same metaserver + S3Adaptor code: conformance-real-*.test.ts;
// over this full cluster: registerConformanceSuite({ mountDir }) on such a mount.)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { S3Client, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { blockKey } from '../../../s3adaptor/keys.js';
import { MdsClient } from '../../../mds/client.js';
import { startMetaProc, type MetaProc } from '../../metaserver/cluster-support.js';
import { cliPath, spawnDaemon, type Spawned } from '../../support/process.js';
import { freePort } from '../../support/ports.js';
import { startS3, type TestS3 } from '../../support/s3.js';
import { tempDir } from '../../support/tmp.js';
import { forceUnmount, isMounted } from '../../gateway/support/mounted.js';
import { waitFor as poll } from '../../support/wait.js';

const waitFor = (what: string, fn: () => Promise<boolean>, ms = 60_000) => poll(what, fn, ms, 200).then(() => {});

describe('tierfs mount over a real cluster (MDS, 3 metaservers, s3rver)', () => {
  const tmp = tempDir('tierfs-gw-cluster-');
  const mountpoint = join(tmp.path, 'mnt');
  const env = { TIERFS_RUN_DIR: join(tmp.path, 'run') };
  let s3: TestS3 | undefined;
  let mds: Spawned<{ address: string }> | undefined;
  const metas: MetaProc[] = [];
  let client: MdsClient | undefined;
  let mount: Spawned<{ mountpoint: string; adminSocket: string; pid: number }> | undefined;

  const cli = (args: string[]) => spawnSync(process.execPath, [cliPath, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 });

  before(async () => {
    mkdirSync(mountpoint);
    s3 = await startS3('tierfs-gw-cluster');
    mds = await spawnDaemon<{ address: string }>(
      ['mds', '--listen', `127.0.0.1:${await freePort()}`, '--data-dir', join(tmp.path, 'mds'),
        '--set', 'partitions.size=100000', '--set', 'scheduler.enabled=false'],
      { logFile: join(tmp.path, 'mds.log') },
    );
    for (let i = 0; i < 3; i++) {
      metas.push(await startMetaProc(tmp.path, `ms${i}`, { mds: [mds.info.address], zone: `z${i}`, hostName: `host${i}`, heartbeatIntervalMs: 300 }));
    }
    client = new MdsClient([mds.info.address]);
    const c = client;
    await waitFor('3 metaservers online', async () => (await c.clusterStatus()).metaservers.filter((m) => m.state === 'ONLINE').length === 3);
    await c.createFs({
      name: 'gwfs', fs_type: 's3', block_size: 1 << 20, chunk_size: 4 << 20,
      s3: { endpoint: s3.endpoint, bucket: s3.bucket, access_key: s3.accessKeyId, secret_key: s3.secretAccessKey, region: 'us-east-1', key_prefix: 'gwfs/' },
    });
  });

  after(async () => {
    await mount?.stop(30_000).catch(() => {});
    forceUnmount(mountpoint);
    client?.close();
    for (const m of metas) await m.proc.stop().catch(() => {});
    await mds?.stop().catch(() => {});
    await s3?.close();
    if (!isMounted(mountpoint)) tmp.remove();
  });

  test('mount registers with the MDS, serves files, and their blocks reach S3 at close', async () => {
    mount = await spawnDaemon(
      ['mount', '--mds', mds!.info.address, '--fs', 'gwfs', mountpoint, '--cache-dir', join(tmp.path, 'cache'), '--cache-size', '512'],
      { logFile: join(tmp.path, 'mount.log'), env, readyTimeoutMs: 60_000 },
    );
    assert.equal(mount.info.mountpoint, mountpoint);
    const body = Buffer.alloc(3 << 20, 7);
    writeFileSync(join(mountpoint, 'big'), body);
    assert.ok(readFileSync(join(mountpoint, 'big')).equals(body));
    const info = await client!.getFsInfo('gwfs');
    assert.equal(info.mounts.length, 1, 'the mount registered its session');

    const s3c = new S3Client({
      endpoint: s3!.endpoint, region: 'us-east-1', forcePathStyle: true,
      credentials: { accessKeyId: s3!.accessKeyId, secretAccessKey: s3!.secretAccessKey },
    });
    try {
      const listed = await s3c.send(new ListObjectsV2Command({ Bucket: s3!.bucket, Prefix: 'gwfs/' }));
      assert.ok((listed.KeyCount ?? 0) >= 3, `blocks of the 3 MiB file are in S3 after close (found ${listed.KeyCount})`);
    } finally {
      s3c.destroy();
    }
  });

  test('fsck finds nothing wrong, then deletes an old leaked object', async () => {
    const fsck = (extra: string[]) => {
      const r = cli(['fsck', '--mds', mds!.info.address, '--fs', 'gwfs', '--json', ...extra]);
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout) as { files: number; brokenFiles: number; leakedObjects: number; deletedObjects: number; referencedObjects: number };
    };
    const clean = fsck([]);
    assert.ok(clean.files >= 1 && clean.referencedObjects >= 3, JSON.stringify(clean));
    assert.deepEqual([clean.brokenFiles, clean.leakedObjects], [0, 0]);
    // An object of an inode that does not exist: what a gateway dying between upload and commit leaves.
    const fsId = (await client!.getFsInfo('gwfs')).fs_id;
    const s3c = new S3Client({
      endpoint: s3!.endpoint, region: 'us-east-1', forcePathStyle: true,
      credentials: { accessKeyId: s3!.accessKeyId, secretAccessKey: s3!.secretAccessKey },
    });
    try {
      await s3c.send(new PutObjectCommand({ Bucket: s3!.bucket, Key: `gwfs/${blockKey(fsId, 999_999, 1, 0, 0)}`, Body: Buffer.from('orphan') }));
    } finally {
      s3c.destroy();
    }
    assert.equal(fsck([]).leakedObjects, 0, 'too young to be called leaked under the default --min-age');
    const swept = fsck(['--min-age', '0', '--delete-leaked']);
    assert.deepEqual([swept.leakedObjects, swept.deletedObjects, swept.brokenFiles], [1, 1, 0]);
    assert.equal(fsck(['--min-age', '0']).leakedObjects, 0);
  });

  test('cache evict, warmup and config tune the running mount', async () => {
    type Sum = { sum: { files: number; blocks: number; bytes: number; fetchedBlocks: number; errors: number }; errors: string[] };
    const json = <T>(args: string[]): T => {
      const r = cli([...args, '--mount', mountpoint, '--json']);
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
      return JSON.parse(r.stdout) as T;
    };
    type Stats = { data: { read: { s3Fetches: number }; disk: { files: number; stagedBlocks: number; capacityBytes: number } } };
    json<Sum>(['cache', 'evict']);
    const emptied = json<Stats>(['cache', 'stats']).data.disk;
    assert.equal(emptied.files - emptied.stagedBlocks, 0, 'evict without paths drops every cached block');

    const warmed = json<Sum>(['cache', 'warmup', mountpoint]);
    assert.deepEqual([warmed.sum.files, warmed.sum.blocks, warmed.sum.bytes, warmed.sum.fetchedBlocks], [1, 3, 3 << 20, 3], 'the 3 MiB file: three 1 MiB blocks fetched');
    assert.equal(json<Sum>(['cache', 'warmup', join(mountpoint, 'big')]).sum.fetchedBlocks, 0, 'a second warmup finds them cached');
    const fetchesBefore = json<Stats>(['cache', 'stats']).data.read.s3Fetches;
    assert.ok(readFileSync(join(mountpoint, 'big')).equals(Buffer.alloc(3 << 20, 7)));
    assert.equal(json<Stats>(['cache', 'stats']).data.read.s3Fetches, fetchesBefore, 'a warmed file is read without S3');
    assert.equal(json<{ sum: { blocks: number } }>(['cache', 'evict', join(mountpoint, 'big')]).sum.blocks, 3);

    const outside = cli(['cache', 'warmup', tmp.path, '--mount', mountpoint, '--no-progress']);
    assert.equal(outside.status, 1);
    assert.match(outside.stderr, /is not under the mount/);

    const changed = json<{ capacityBytes: number; uploadConcurrency: number }>(['cache', 'config', '--capacity', '256', '--upload-concurrency', '2']);
    assert.deepEqual([changed.capacityBytes, changed.uploadConcurrency], [256 << 20, 2]);
    assert.equal(json<Stats>(['cache', 'stats']).data.disk.capacityBytes, 256 << 20);
    const bad = cli(['cache', 'config', '--trim-low', '0.9', '--mount', mountpoint]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /INVALID_ARGUMENT: disk cache: watermarks must satisfy/);
    assert.equal(json<{ trimLowWatermark: number }>(['cache', 'config']).trimLowWatermark, 0.35, 'a refused change changes nothing');
    json(['cache', 'config', '--capacity', '512']);
  });

  test('cache stats and flush answer; umount flushes, deregisters and unmounts', async () => {
    const stats = cli(['cache', 'stats', '--mount', mountpoint, '--json']);
    assert.equal(stats.status, 0, stats.stderr);
    const parsed = JSON.parse(stats.stdout) as { fs: string; data: { disk: { capacityBytes: number } | null } };
    assert.equal(parsed.fs, 'gwfs');
    assert.equal(parsed.data.disk?.capacityBytes, 512 << 20);
    const flush = cli(['cache', 'flush', '--mount', mountpoint]);
    assert.equal(flush.status, 0, flush.stderr);
    const um = cli(['umount', mountpoint]);
    assert.equal(um.status, 0, um.stderr);
    assert.equal(await mount!.exited(), 0);
    assert.equal(isMounted(mountpoint), false);
    assert.equal((await client!.getFsInfo('gwfs')).mounts.length, 0, 'the session was deregistered');
  });
});
