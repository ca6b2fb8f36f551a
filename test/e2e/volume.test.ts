// A block volume as a user runs one (issue 13 item 6): tierfs up with 3 chunkservers, create,
// attach (loop device over the one-file FUSE mount), mkfs.ext4, mount, 200 files with
// checksums while one chunkserver is killed with -9 midway, sync, umount, fsck.ext4 -n clean,
// detach, attach again, every checksum equal. Also: a second read-write attach is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '../support/tmp.js';
import { cliPath } from '../support/process.js';
import { ensureUnmounted } from '../../cli/cluster-ops.js';
import { loadState } from '../../cli/cluster-state.js';
import { MdsClient } from '../../mds/client.js';
import { loadClusterAuth, useClusterAuth, OPEN_AUTH } from '../../common/cluster-auth.js';

const run = promisify(execFile);
const tierfs = (args: string[], timeout = 240_000) =>
  run(process.execPath, [cliPath, ...args], { timeout, maxBuffer: 16 << 20, env: { ...process.env, TIERFS_LOG_LEVEL: 'warn' } });
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const lastLine = (s: string) => s.trim().split('\n').pop()!.trim();

test('volume e2e: ext4 on an attached volume survives kill -9 of a chunkserver, fsck is clean, data equal after re-attach', { timeout: 600_000 }, async (t) => {
  const tmp = tempDir('tierfs-vol-');
  const dataDir = join(tmp.path, 'data');
  const fsMnt = join(tmp.path, 'mnt');
  const extMnt = join(tmp.path, 'ext');
  mkdirSync(extMnt, { recursive: true });
  const d = ['--data-dir', dataDir];
  try {
    const t0 = Date.now();
    const took = (what: string) => t.diagnostic(`${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    await tierfs(['up', ...d, '--mount', fsMnt, '--skip-mount', '--chunkservers', '3']);
    took('up');
    await tierfs(['volume', 'create', 'vol', '--size', '192MiB', ...d]);
    const device = lastLine((await tierfs(['volume', 'attach', 'vol', ...d])).stdout);
    assert.match(device, /^\/dev\/loop\d+$/);
    await assert.rejects(tierfs(['volume', 'attach', 'vol', ...d]), /already attached/);

    took('attach');
    execFileSync('mkfs.ext4', ['-q', '-F', device]);
    execFileSync('mount', [device, extMnt]);
    const sums = new Map<string, string>();
    const chunkservers = loadState(dataDir)!.processes.filter((p) => p.role === 'chunkserver');
    assert.equal(chunkservers.length, 3);
    for (let i = 0; i < 200; i++) {
      if (i === 100) process.kill(chunkservers[0]!.pid, 'SIGKILL');
      const data = randomBytes(4096 + ((i * 7919) % 61) * 1024);
      await writeFile(join(extMnt, `f${i}`), data);
      sums.set(`f${i}`, sha(data));
    }
    took('200 files written');
    execFileSync('sync');
    execFileSync('umount', [extMnt]);
    execFileSync('fsck.ext4', ['-n', device]); // exit 0: clean

    took('fsck');
    await tierfs(['volume', 'detach', 'vol', ...d]);
    const again = lastLine((await tierfs(['volume', 'attach', 'vol', ...d])).stdout);
    execFileSync('mount', [again, extMnt]);
    for (const [name, sum] of sums) assert.equal(sha(await readFile(join(extMnt, name))), sum, name);
    execFileSync('umount', [extMnt]);
    took('checksums after re-attach');

    // This process asks the MDS itself: with the cluster's key, as the CLI does.
    useClusterAuth(loadClusterAuth({ clusterKeyFile: join(dataDir, 'cluster.key') }));
    const mds = new MdsClient(loadState(dataDir)!.mdsAddresses);
    try {
      const info = await mds.getVolume('vol');
      assert.equal(info.allocated_segments, 1);
      assert.equal(info.copysets.length, 3, 'chunks spread over the 3 copysets');
      assert.equal(info.opens.length, 1);
      await tierfs(['volume', 'detach', again, ...d]);
      assert.equal((await mds.getVolume('vol')).opens.length, 0, 'detach closed the attach session');
    } finally {
      mds.close();
      useClusterAuth(OPEN_AUTH);
    }
    assert.ok(!readFileSync('/proc/mounts', 'utf8').includes(join(dataDir, 'volumes')), 'the FUSE file is unmounted after detach');
  } finally {
    try {
      execFileSync('umount', ['-l', extMnt], { stdio: 'ignore' });
    } catch {
      /* not mounted */
    }
    await tierfs(['down', ...d]).catch(() => {});
    await ensureUnmounted(fsMnt).catch(() => {});
    tmp.remove();
  }
});
