// Metaservers under a real MDS (embedded store) and a real s3rver: registration with a kept
// token, copysets and partitions placed by the MDS, heartbeats reporting leaders, a client
// routed through the MDS, and the trash deleting an inode's objects from S3.
import { test } from 'node:test';
import { StatusCode, TierfsError } from '../../common/status.js';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { S3Client, PutObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { MdsClient } from '../../mds/client.js';
import { RemoteMetaClient } from '../../metaserver/client.js';
import { blockKey } from '../../s3adaptor/keys.js';
import { S_IFREG, S_IFDIR } from '../../metaserver/meta-client.js';
import { startS3 } from '../support/s3.js';
import { tempDir } from '../support/tmp.js';
import { freePort } from '../support/ports.js';
import { spawnDaemon, type Spawned } from '../support/process.js';
import { copysetCall, copysetStatusOn, leaderOf, onLeader, startMetaProc, type MetaProc } from './cluster-support.js';
import type { ListCopysetsResponse__Output } from '../../proto/gen/tierfs/copyset/ListCopysetsResponse.js';
import { waitFor as poll } from '../support/wait.js';

const waitFor = <T>(what: string, fn: () => Promise<T | undefined | null | false>, ms = 60_000) => poll(what, fn, ms, 100);

test('metaservers register with the MDS, serve its filesystem, report leaders, and delete trashed objects from S3', async () => {
  const tmp = tempDir('tierfs-ms-mds-');
  const s3 = await startS3();
  const procs: MetaProc[] = [];
  let mds: Spawned<{ address: string }> | null = null;
  let mdsClient: MdsClient | null = null;
  let meta: RemoteMetaClient | null = null;
  const s3c = new S3Client({
    endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
  });
  try {
    mds = await spawnDaemon<{ address: string }>(
      ['mds', '--listen', `127.0.0.1:${await freePort()}`, '--data-dir', join(tmp.path, 'mds'),
        '--set', 'partitions.size=1000', '--set', 'scheduler.enabled=false', '--set', 'health.checkIntervalMs=200'],
      { logFile: join(tmp.path, 'mds.log') },
    );
    const mdsAddress = mds.info.address;
    const msCfg = (i: number) => ({ mds: [mdsAddress], zone: `z${i}`, hostName: `host${i}`, heartbeatIntervalMs: 300 });
    for (let i = 0; i < 3; i++) procs.push(await startMetaProc(tmp.path, `ms${i}`, msCfg(i)));
    mdsClient = new MdsClient([mdsAddress]);
    const client = mdsClient;
    await waitFor('3 metaservers online', async () => (await client.clusterStatus()).metaservers.filter((m) => m.state === 'ONLINE').length === 3);
    for (const p of procs) assert.ok(existsSync(join(p.dataDir, 'registration.json')));

    const fs = await client.createFs({
      name: 'metafs', fs_type: 's3', block_size: 65536, chunk_size: 262144,
      s3: { endpoint: s3.endpoint, bucket: s3.bucket, access_key: s3.accessKeyId, secret_key: s3.secretAccessKey, region: 'us-east-1', key_prefix: '' },
    });
    meta = new RemoteMetaClient({ fsId: fs.fs_id, mds: client });
    const root = await meta.getInode(1);
    assert.equal(root.mode, S_IFDIR | 0o755);
    const d = await meta.createNode(1, 'dir', { mode: S_IFDIR | 0o755, uid: 0, gid: 0, exclusive: true });
    const f = await meta.createNode(d.ino, 'file', { mode: S_IFREG | 0o644, uid: 0, gid: 0, exclusive: true });

    // Two blocks of one slice in chunk 1 (file blocks 4 and 5 with 4 blocks per chunk).
    const keys = [blockKey(fs.fs_id, f.ino, 77, 4, 0), blockKey(fs.fs_id, f.ino, 77, 5, 0)];
    for (const Key of keys) await s3c.send(new PutObjectCommand({ Bucket: s3.bucket, Key, Body: Buffer.alloc(1024, 1) }));
    await meta.appendSlices(f.ino, new Map([[1, [{ chunkId: 77, compaction: 0, offset: 0, len: 65536 + 1024, size: 65536 + 1024, zero: false }]]]));
    await meta.setAttr(f.ino, { size: 262144 + 65536 + 1024 });

    // Heartbeats tell the MDS every copyset's leader and the partitions' counters.
    await waitFor('leaders reported', async () => {
      const st = await client.clusterStatus();
      return st.copysets.length > 0 && st.copysets.every((c) => c.leader !== '');
    });
    await waitFor('partition counters reported', async () => {
      const parts = await client.listPartitions(fs.fs_id);
      return parts.some((p) => p.next_id > p.partition!.start + 1);
    });

    // Every metaserver serves Prometheus metrics, including per-RPC latency.
    const scraped = await Promise.all(procs.map(async (p) => (await fetch(`http://127.0.0.1:${p.proc.info.metricsPort as number}/metrics`)).text()));
    assert.ok(scraped.every((t) => /tierfs_metaserver_copysets\S* \d/.test(t)));
    assert.ok(scraped.some((t) => /tierfs_metaserver_rpc_seconds_count\{[^}]*method="Create(Inode|Node)"[^}]*\} [1-9]/.test(t)), 'RPC latency metrics');

    // kill -9 and restart: the metaserver presents its kept token (still three metaservers),
    // replays its log without applying anything twice, and serves the same state as leader.
    const before = await meta.usage();
    const first = procs[0]!;
    await first.proc.kill9();
    procs[0] = await startMetaProc(tmp.path, 'ms0', msCfg(0), {}, first.address);
    await waitFor('restarted metaserver online', async () => (await client.clusterStatus()).metaservers.filter((m) => m.state === 'ONLINE').length === 3);
    assert.equal((await client.clusterStatus()).metaservers.length, 3);
    const held = await copysetCall<ListCopysetsResponse__Output>(first.address, 'ListCopysets', {});
    assert.ok(held.copysets.length > 0, 'the restarted metaserver reopened its copysets');
    for (const cs of held.copysets) {
      const peers = cs.peers;
      await waitFor('restarted replica caught up', async () => {
        const leader = await leaderOf(peers, cs.pool_id, cs.copyset_id);
        const [a, b] = await Promise.all([copysetStatusOn(leader, cs.pool_id, cs.copyset_id), copysetStatusOn(first.address, cs.pool_id, cs.copyset_id)]);
        return b.copyset!.applied_index >= a.copyset!.commit_index;
      });
      // A transfer is given up after one election timeout (the leader's stream to the
      // restarted peer may still be reconnecting then); the caller asks again, as the MDS does.
      await waitFor('restarted replica leads', async () => {
        if ((await leaderOf(peers, cs.pool_id, cs.copyset_id)) === first.address) return true;
        await onLeader(peers, 'TransferLeader', { pool_id: cs.pool_id, copyset_id: cs.copyset_id, peer: first.address }).catch((err: unknown) => {
          if (!(err instanceof TierfsError && err.code === StatusCode.TIMEOUT)) throw err;
        });
        return (await leaderOf(peers, cs.pool_id, cs.copyset_id)) === first.address;
      });
    }
    assert.deepEqual(await meta.usage(), before);
    assert.equal((await meta.lookup(d.ino, 'file')).ino, f.ino);

    // Unlink + release: the leader's trash job deletes the objects, then the inode.
    assert.equal((await meta.unlink(d.ino, 'file')).nlink, 0);
    await meta.releaseOrphan(f.ino);
    await waitFor('objects deleted', async () => {
      const listed = await s3c.send(new ListObjectsV2Command({ Bucket: s3.bucket }));
      return !(listed.Contents ?? []).some((o) => keys.includes(o.Key ?? ''));
    });
    await waitFor('inode purged', async () => {
      try {
        await meta!.getInode(f.ino);
        return false;
      } catch (err) {
        return (err as { code?: string }).code === 'NOT_FOUND';
      }
    });
  } finally {
    await meta?.close();
    mdsClient?.close();
    s3c.destroy();
    for (const p of procs) await p.proc.stop();
    await mds?.stop();
    await s3.close();
    tmp.remove();
  }
});
