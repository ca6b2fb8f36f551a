// Issue 14 item 7: three metaservers on three "hosts" (network namespaces with veth pairs to
// a bridge; MDS, S3 and the kernel mount in the test's namespace). The leader of the
// copyset a writer works in is cut off from its followers and from the gateway: the
// majority elects a new leader, the old one steps down (check-quorum), the writer stalls at
// most 10 s and sees no error, nothing acknowledged is lost, and after healing the old
// leader catches up. Prints the longest stall.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { tempDir } from '../support/tmp.js';
import { cliPath, repoRoot, spawnDaemon, spawnProcess, type Spawned } from '../support/process.js';
import { startS3, type TestS3 } from '../support/s3.js';
import { freePort } from '../support/ports.js';
import { NetnsLab, netnsAvailable } from '../support/netns.js';
import { waitFor } from '../support/wait.js';
import { WriteStream } from '../support/write-stream.js';
import { ensureUnmounted } from '../../cli/cluster-ops.js';
import { createClusterKey, loadClusterAuth, useClusterAuth, OPEN_AUTH } from '../../common/cluster-auth.js';
import { CHANNEL_OPTIONS, clientCredentials, loadProto, unary } from '../../common/grpc.js';
import { MdsClient } from '../../mds/client.js';
import type { ProtoGrpcType } from '../../proto/gen/copyset.js';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface CopysetStatus {
  leader: string;
  is_leader: boolean;
  term: number;
  commit_index: number;
  applied_index: number;
}

test('a copyset leader cut off by a network partition: the majority goes on, the writer stalls seconds, nothing acknowledged is lost, the old leader catches up', { timeout: 400_000, skip: !netnsAvailable() && 'needs root and iproute2 (ip netns)' }, async () => {
  const tmp = tempDir('tierfs-netns-');
  const lab = new NetnsLab(3);
  const keyFile = join(tmp.path, 'cluster.key');
  createClusterKey(keyFile);
  useClusterAuth(loadClusterAuth({ clusterKeyFile: keyFile }));
  const procs: Spawned[] = [];
  let s3: TestS3 | null = null;
  let mount: Spawned | null = null;
  let mds: MdsClient | null = null;
  const mnt = join(tmp.path, 'mnt');
  mkdirSync(mnt);
  try {
    s3 = await startS3('netns');
    const mdsAddress = `${lab.bridgeAddress}:${await freePort()}`;
    procs.push(await spawnDaemon(['mds', '--listen', mdsAddress, '--data-dir', join(tmp.path, 'mds'), '--set', `clusterKeyFile=${keyFile}`], { logFile: join(tmp.path, 'mds.log') }));
    const addresses = lab.hosts.map((h) => `${h.address}:7000`);
    for (const [i, h] of lab.hosts.entries()) {
      const dir = join(tmp.path, `ms${i}`);
      mkdirSync(dir);
      const config = join(dir, 'metaserver.yaml');
      // No S3 deleter: S3 listens on the test namespace's loopback, which the hosts cannot reach.
      writeFileSync(config, stringify({ dataDir: dir, listen: addresses[i], mds: [mdsAddress], zone: `z${i}`, hostName: h.name, deleteObjects: false, clusterKeyFile: keyFile }));
      const [cmd, args] = lab.exec(i, process.execPath, [cliPath, 'metaserver', '--config', config]);
      procs.push(await spawnProcess(cmd, args, { logFile: join(dir, 'metaserver.log'), cwd: repoRoot }));
    }
    mds = new MdsClient([mdsAddress]);
    await waitFor('3 metaservers online', async () => (await mds!.clusterStatus()).metaservers.filter((m) => m.state === 'ONLINE').length === 3, 60_000);
    const fs = await mds.createFs({ name: 'part', fs_type: 's3', s3: { endpoint: s3.endpoint, bucket: s3.bucket, access_key: s3.accessKeyId, secret_key: s3.secretAccessKey, region: 'us-east-1', key_prefix: '' } });
    mount = await spawnDaemon(['mount', '--mds', mdsAddress, '--fs', 'part', mnt, '--cache-dir', join(tmp.path, 'cache'), '--cache-size', '256', '--cluster-key-file', keyFile], { logFile: join(tmp.path, 'mount.log'), readyTimeoutMs: 90_000 });

    // Files made in the root live in the root's partition: its copyset's leader is cut off.
    const root = await waitFor('root partition leader', async () => (await mds!.listPartitions(fs.fs_id)).find((p) => Number(p.partition!.start) === 1 && p.leader));
    const { pool_id: poolId, copyset_id: copysetId } = root.partition!;
    // Asynchronous: the writer runs in this process, and a blocked event loop would count as its stall.
    const statusIn = async (i: number): Promise<CopysetStatus> => {
      const [cmd, args] = lab.exec(i, process.execPath, [join(repoRoot, 'dist', 'test', 'support', 'copyset-probe.js'), addresses[i]!, String(poolId), String(copysetId), keyFile]);
      return JSON.parse((await run(cmd, args, { cwd: repoRoot })).stdout) as CopysetStatus;
    };

    const writer = new WriteStream(mnt, 'p');
    await sleep(3000);
    // Whoever leads right now (the MDS may have balanced leaders meanwhile) is cut off.
    const leading = await Promise.all(lab.hosts.map(async (_, i) => (await statusIn(i)).is_leader));
    const victim = leading.indexOf(true);
    assert.ok(victim >= 0, 'one of the namespaces leads the root copyset');
    const oldLeader = addresses[victim]!;
    lab.cut(victim);
    const cutAt = Date.now();
    const newLeader = await waitFor('the majority elects a leader', async () => {
      for (const i of [0, 1, 2].filter((j) => j !== victim)) if ((await statusIn(i)).is_leader) return addresses[i]!;
      return null;
    });
    const electedMs = Date.now() - cutAt;
    assert.notEqual(newLeader, oldLeader);
    const stepDown = await waitFor('the cut-off leader steps down', async () => ((await statusIn(victim)).is_leader ? null : Date.now() - cutAt));
    await sleep(Math.max(0, 15_000 - (Date.now() - cutAt)));
    const writtenWhileCut = writer.acknowledgedSince(cutAt);

    lab.heal(victim);
    const healedAt = Date.now();
    await sleep(3000);
    await writer.stop(); // an error seen by the writer fails the test here
    const longest = writer.longestStall(cutAt);
    const Ctor = loadProto<ProtoGrpcType>('copyset.proto').tierfs.copyset.CopysetService;
    const leaderClient = new Ctor(newLeader, clientCredentials(), CHANNEL_OPTIONS);
    const target = (await unary<object, { copyset: CopysetStatus }>(leaderClient, 'GetCopysetStatus', { pool_id: poolId, copyset_id: copysetId })).copyset.commit_index;
    leaderClient.close();
    const caughtUpMs = await waitFor('the old leader catches up', async () => (Number((await statusIn(victim)).applied_index) >= Number(target) ? Date.now() - healedAt : null), 60_000);
    process.stdout.write(`partition drill: new leader after ${electedMs} ms, old leader stepped down after ${stepDown} ms, longest writer stall ${longest} ms, ${writtenWhileCut} files acknowledged while cut, old leader caught up ${caughtUpMs} ms after healing\n`);
    assert.ok(writtenWhileCut > 0, 'writes went on while the leader was cut off');
    assert.ok(longest <= 10_000, `longest stall ${longest} ms (bound 10 s)`);
    const lost = await writer.lost();
    process.stdout.write(`partition drill: ${lost} of ${writer.done.length} acknowledged files lost\n`);
    assert.equal(lost, 0);
  } finally {
    useClusterAuth(OPEN_AUTH);
    mds?.close();
    await mount?.stop(60_000).catch(() => {});
    await ensureUnmounted(mnt).catch(() => {});
    for (const p of procs.reverse()) await p.kill9().catch(() => {});
    await s3?.close().catch(() => {});
    lab.remove();
    tmp.remove();
  }
});
