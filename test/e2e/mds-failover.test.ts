// MDS HA: `tierfs up --etcd URL --mds-count 3` on a real etcd, then kill -9 of the leader MDS.
// A standby takes over; the running mount keeps its session (refreshed at the new leader) and
// keeps serving reads and writes; a second mount started after the failover gets its session,
// partitions and a fresh batch of chunk ids from the new leader. Chunk ids handed out by the
// new leader must not repeat the old leader's: a mount on an empty cache dir reads every file
// back from S3 identical (a repeated id would have overwritten another file's blocks).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { ensureUnmounted } from '../../cli/cluster-ops.js';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { cliPath, spawnDaemon } from '../support/process.js';
import { tempDir } from '../support/tmp.js';
import { forceUnmount, waitFor, type MountProc } from './support/cluster.js';

const run = promisify(execFile);
const tierfs = (args: string[], timeout = 120_000) =>
  run(process.execPath, [cliPath, ...args], { timeout, maxBuffer: 16 << 20, env: { ...process.env, TIERFS_LOG_LEVEL: 'warn' } });
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface StatusJson {
  processes: Array<{ name: string; role: string; pid: number; address?: string }>;
  mds: Array<{ address: string; leader: boolean }>;
  metaservers: Array<{ state: string }>;
  filesystems: Array<{ name: string; mounts: unknown[] }>;
}

test('the leader MDS dies: a standby takes over and mounts keep working', { timeout: 300_000 }, async () => {
  const tmp = tempDir('tierfs-mds-ha-');
  const dataDir = join(tmp.path, 'data');
  const mnt = join(tmp.path, 'mnt');
  const status = async () => JSON.parse((await tierfs(['status', '--data-dir', dataDir, '--json'], 30_000)).stdout) as StatusJson;
  const mounts: Array<{ proc: MountProc; mountpoint: string }> = [];
  const mountMore = async (name: string, mdsAddrs: string[]) => {
    const mountpoint = join(tmp.path, name);
    mkdirSync(mountpoint);
    const proc = await spawnDaemon<{ mountpoint: string; pid: number; adminSocket: string }>(
      ['mount', '--cluster-key-file', join(dataDir, 'cluster.key'), '--mds', mdsAddrs.join(','), '--fs', 'default', mountpoint, '--cache-dir', join(tmp.path, `${name}-cache`), '--cache-size', '256'],
      { logFile: join(tmp.path, `${name}.log`), env: { TIERFS_RUN_DIR: join(tmp.path, 'run') }, readyTimeoutMs: 90_000 },
    ).catch((err: unknown) => {
      forceUnmount(mountpoint);
      throw err;
    });
    mounts.push({ proc, mountpoint });
    return mountpoint;
  };
  let etcd: TestEtcd | undefined;
  try {
    etcd = await startEtcd();
    await tierfs(['up', '--data-dir', dataDir, '--mount', mnt, '--cache-size', '256', '--etcd', etcd.endpoint, '--mds-count', '3'], 240_000);

    const files = new Map<string, Buffer>();
    const put = (root: string, name: string, size: number) => {
      const body = randomBytes(size);
      writeFileSync(join(root, name), body);
      files.set(name, body);
    };
    put(mnt, 'before', (2 << 20) + 17);

    const before = await status();
    assert.equal(before.mds.length, 3);
    const leader = before.mds.find((m) => m.leader);
    assert.ok(leader, 'an MDS leads');
    const proc = before.processes.find((p) => p.role === 'mds' && p.address === leader.address);
    assert.ok(proc, `the leader ${leader.address} is one of the MDS processes tierfs up started`);
    process.kill(proc.pid, 'SIGKILL');

    let newLeader = '';
    await waitFor('a standby MDS to take over', async () => {
      const s = await status();
      newLeader = s.mds.find((m) => m.leader && m.address !== leader.address)?.address ?? '';
      return newLeader !== '';
    }, 90_000, 500);

    // The running mount keeps serving: new files (new slices and chunk ids) and old ones.
    put(mnt, 'after-on-first', 300_000);
    assert.equal(sha(readFileSync(join(mnt, 'before'))), sha(files.get('before')!));

    // A mount started now registers at the new leader and allocates chunk ids there.
    const second = await mountMore('second', before.mds.map((m) => m.address));
    put(second, 'after-on-second', (1 << 20) + 5);
    put(mnt, 'after-on-first-2', 70_000);
    const s = await status();
    assert.equal(s.filesystems.find((f) => f.name === 'default')?.mounts.length, 2, 'both mount sessions are live at the new leader');
    assert.equal(s.metaservers.filter((m) => m.state === 'ONLINE').length, 3);

    // Every file read back from S3 through a mount with an empty cache.
    const third = await mountMore('third', before.mds.map((m) => m.address));
    for (const [name, body] of files) {
      assert.equal(sha(readFileSync(join(third, name))), sha(body), `${name} read back from S3`);
      assert.equal(sha(readFileSync(join(second, name))), sha(body), `${name} on the second mount`);
    }
  } finally {
    for (const m of mounts) {
      await m.proc.stop(30_000).catch(() => {});
      forceUnmount(m.mountpoint);
    }
    await tierfs(['down', '--data-dir', dataDir]).catch(() => {});
    await ensureUnmounted(mnt).catch(() => {});
    await etcd?.close();
    tmp.remove();
  }
});
