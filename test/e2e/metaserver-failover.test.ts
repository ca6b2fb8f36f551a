// kill -9 of the metaserver leading the filesystem's copysets while `cp -r` copies a tree
// into the mount: the copy completes (the gateway finds the new leader and retries) and the
// tree compares equal. The killed metaserver then restarts on its old address and data dir
// and the cluster heals: 3 ONLINE metaservers, every copyset HEALTHY with a leader.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startCluster, waitFor, type TestCluster } from './support/cluster.js';

/** sha256 of every regular file under root, by relative path (directories listed too). */
function digestTree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) {
        out.set(`${relative(root, p)}/`, 'dir');
        walk(p);
      } else {
        out.set(relative(root, p), createHash('sha256').update(readFileSync(p)).digest('hex'));
      }
    }
  };
  walk(root);
  return out;
}

function countFiles(root: string): number {
  let n = 0;
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else n++;
    }
  };
  try {
    walk(root);
  } catch {
    /* the tree is changing under us: an undercount is fine */
  }
  return n;
}

function makeTree(root: string): number {
  let files = 0;
  for (let d = 0; d < 20; d++) {
    const dir = join(root, `d${String(d).padStart(2, '0')}`, d % 4 === 0 ? 'sub' : '');
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < 10; f++) {
      writeFileSync(join(dir, `f${f}.bin`), randomBytes(50 + ((d * 131 + f * 977) % 20_000)));
      files++;
    }
  }
  for (const [i, mib] of [1, 2, 4].entries()) {
    writeFileSync(join(root, `d${String(i * 7).padStart(2, '0')}`, `big${i}.bin`), randomBytes((mib << 20) + i * 999));
    files++;
  }
  return files;
}

describe('metaserver leader kill -9 during a copy', () => {
  let cluster: TestCluster | undefined;
  before(async () => {
    cluster = await startCluster('msfail');
  });
  after(async () => {
    await cluster?.close();
  });

  test('cp -r completes across the failover, the tree is equal, and the cluster heals', async () => {
    const c = cluster!;
    const src = join(c.dir, 'src');
    const total = makeTree(src);
    const { mountpoint } = await c.mount({ name: 'mnt' });
    const dst = join(mountpoint, 'copy');

    // The victim: the metaserver leading the most copysets that hold partitions.
    const st = await c.client.clusterStatus();
    const leads = new Map<string, number>();
    for (const cs of st.copysets) if (cs.partition_count > 0 && cs.leader) leads.set(cs.leader, (leads.get(cs.leader) ?? 0) + 1);
    const victimAddr = [...leads.entries()].sort((x, y) => y[1] - x[1])[0]?.[0];
    assert.ok(victimAddr, `a copyset with partitions has a leader: ${JSON.stringify(st.copysets)}`);
    const victim = c.metas.findIndex((m) => m.address === victimAddr);
    assert.ok(victim >= 0, `leader ${victimAddr} is one of our metaservers`);

    const cp = spawn('cp', ['-r', src, dst], { stdio: ['ignore', 'ignore', 'pipe'] });
    let cpErr = '';
    cp.stderr.on('data', (b: Buffer) => (cpErr += b.toString()));
    const cpExit = new Promise<number | null>((resolve) => cp.once('exit', (code) => resolve(code)));
    try {
      await waitFor('cp to be under way', () => countFiles(dst) >= 20 || cp.exitCode !== null, 60_000, 50);
      assert.equal(cp.exitCode, null, `cp still running when the leader is killed (it exited ${cp.exitCode}: ${cpErr})`);
      await c.metas[victim]!.proc.kill9();

      const code = await Promise.race([cpExit, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 120_000).unref())]);
      assert.equal(code, 0, `cp -r finished successfully after the failover: ${cpErr}`);
    } finally {
      if (cp.exitCode === null) cp.kill('SIGKILL');
    }

    const want = digestTree(src);
    const got = digestTree(dst);
    assert.equal([...want.values()].filter((v) => v !== 'dir').length, total);
    assert.deepEqual(got, want, 'the copied tree equals the source');

    // The MDS learns leaders from heartbeats, so its view may lag the election.
    await waitFor('the MDS to report a surviving leader for every copyset with partitions', async () => {
      const s = await c.client.clusterStatus();
      return s.copysets.filter((cs) => cs.partition_count > 0).every((cs) => cs.leader !== '' && cs.leader !== victimAddr);
    }, 30_000);

    await c.restartMeta(victim);
    await waitFor('3 ONLINE metaservers and every copyset HEALTHY', async () => {
      const s = await c.client.clusterStatus();
      return s.metaservers.filter((m) => m.state === 'ONLINE').length === 3 && s.copysets.every((cs) => cs.health === 'HEALTHY' && cs.leader !== '');
    }, 60_000);
    // The healed cluster still serves the tree and takes new writes.
    writeFileSync(join(mountpoint, 'after-heal'), 'ok');
    assert.equal(readFileSync(join(mountpoint, 'after-heal'), 'utf8'), 'ok');
    assert.deepEqual(digestTree(dst), want);
  });
});
