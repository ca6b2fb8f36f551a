// The MDS's scheduler replaces a dead metaserver: the CHANGE_PEER it hands to the copyset
// leader in a heartbeat reply is executed by the metaservers (the newcomer joins and
// catches up), and the filesystem's metadata stays whole.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { MdsClient } from '../../mds/client.js';
import { RemoteMetaClient } from '../../metaserver/client.js';
import { S_IFREG } from '../../metaserver/meta-client.js';
import { tempDir } from '../support/tmp.js';
import { freePort } from '../support/ports.js';
import { spawnDaemon, type Spawned } from '../support/process.js';
import { copysetCall, startMetaProc, type MetaProc } from './cluster-support.js';
import type { ListCopysetsResponse__Output } from '../../proto/gen/tierfs/copyset/ListCopysetsResponse.js';
import { waitFor as poll } from '../support/wait.js';

const waitFor = <T>(what: string, fn: () => Promise<T | undefined | null | false>, ms = 90_000) => poll(what, fn, ms, 200);

test('a dead metaserver is replaced through heartbeat-driven CHANGE_PEER; the metadata stays whole', async () => {
  const tmp = tempDir('tierfs-ms-recover-');
  const procs: MetaProc[] = [];
  let mds: Spawned<{ address: string }> | null = null;
  let client: MdsClient | null = null;
  let meta: RemoteMetaClient | null = null;
  try {
    mds = await spawnDaemon<{ address: string }>(
      ['mds', '--listen', `127.0.0.1:${await freePort()}`, '--data-dir', join(tmp.path, 'mds'),
        '--set', 'partitions.size=1000', '--set', 'copysets.total=2', '--set', 'health.checkIntervalMs=200',
        '--set', 'health.unstableAfterMs=1000', '--set', 'health.offlineAfterMs=2500', '--set', 'scheduler.intervalMs=300',
        '--set', 'scheduler.balanceCopysets=false', '--set', 'scheduler.balanceLeaders=false', '--set', 's3.headBucket=false'],
      { logFile: join(tmp.path, 'mds.log') },
    );
    const mdsAddress = mds.info.address;
    for (let i = 0; i < 4; i++) {
      procs.push(await startMetaProc(tmp.path, `ms${i}`, { mds: [mdsAddress], zone: `z${i}`, hostName: `host${i}`, heartbeatIntervalMs: 300 }));
    }
    client = new MdsClient([mdsAddress]);
    const mdsc = client;
    await waitFor('4 metaservers online', async () => (await mdsc.clusterStatus()).metaservers.filter((m) => m.state === 'ONLINE').length === 4);
    const fs = await mdsc.createFs({
      name: 'recoverfs', fs_type: 's3',
      s3: { endpoint: 'http://127.0.0.1:9', bucket: 'unused', access_key: 'a', secret_key: 'b', region: 'us-east-1', key_prefix: '' },
    });
    meta = new RemoteMetaClient({ fsId: fs.fs_id, mds: mdsc });
    const names = Array.from({ length: 40 }, (_, i) => `f${i}`);
    for (const n of names) await meta.createNode(1, n, { mode: S_IFREG | 0o644, uid: 0, gid: 0, exclusive: true });

    // Kill a member of the root partition's copyset.
    const parts = await mdsc.listPartitions(fs.fs_id);
    const rootPart = parts.find((p) => p.partition!.start === 1)!;
    const members = rootPart.peers;
    const victim = procs.find((p) => members.includes(p.address))!;
    const spare = procs.find((p) => !members.includes(p.address))!;
    await victim.proc.kill9();

    const cs = rootPart.partition!.copyset_id;
    await waitFor('the copyset replaced its dead member', async () => {
      const st = await mdsc.clusterStatus();
      const info = st.copysets.find((c) => c.copyset_id === cs)!;
      return info.peers.length === 3 && !info.peers.includes(victim.address) && info.peers.includes(spare.address);
    });
    await waitFor('the newcomer holds the copyset', async () => {
      const res = await copysetCall<ListCopysetsResponse__Output>(spare.address, 'ListCopysets', {});
      const held = res.copysets.find((c) => c.copyset_id === cs);
      return held && held.peers.length === 3 && held.applied_index > 0;
    });
    const listed = (await meta.listDentries(1, '', 1000)).map((d) => d.name).sort();
    assert.deepEqual(listed, [...names].sort());
  } finally {
    await meta?.close();
    client?.close();
    for (const p of procs) await p.proc.stop();
    await mds?.stop();
    tmp.remove();
  }
});
