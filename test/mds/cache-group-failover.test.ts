// The cache group through an MDS failover (issue 15): the membership lives only in the
// leader's memory and is rebuilt from the nodes' heartbeats. A mount must keep using the last
// membership it knew while there is no leader and while the new leader is rebuilding it, and
// only then drop a node that stopped heartbeating. Two MDS processes over a real etcd.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MdsClient } from '../../mds/client.js';
import { GroupBlockCache } from '../../s3adaptor/cache-group.js';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { tempDir } from '../support/tmp.js';
import { freePort } from '../support/ports.js';
import type { Spawned } from '../support/process.js';
import { spawnMds, waitFor, type MdsReady } from './helpers.js';

const tmp = tempDir('tierfs-mds-cg-');
let etcd: TestEtcd;
const procs = new Map<string, Spawned<MdsReady>>();
let addresses: string[] = [];

before(async () => {
  etcd = await startEtcd();
  addresses = await Promise.all([0, 1].map(async () => `127.0.0.1:${await freePort()}`));
  await Promise.all(
    addresses.map(async (a, i) =>
      procs.set(a, await spawnMds(['--listen', a, '--etcd', etcd.endpoint, '--data-dir', `${tmp.path}/${i}`, '--set', 'etcd.sessionTtlS=2', '--set', 's3.headBucket=false'], tmp.path, `mds-${i}`)),
    ),
  );
});

after(async () => {
  await Promise.all([...procs.values()].map((p) => p.stop()));
  await etcd.close();
  tmp.remove();
});

test('a mount keeps its last known cache group through an MDS failover and the new leader\'s rebuild; a silent node leaves only after it', { timeout: 90_000 }, async () => {
  const mds = new MdsClient(addresses, { deadlineMs: 30_000 });
  const nodes = ['10.9.0.1:7100', '10.9.0.2:7100'];
  const beat = (address: string) =>
    mds.cacheNodeHeartbeat({ address, host_name: 'h', capacity_bytes: 1 << 30, used_bytes: 0, blocks: 0, hit_ratio: 0, hits: 0, misses: 0, corrupt_blocks: 0 });
  // From the kill until the first answer of a new leader that is done rebuilding: the failover.
  let phase: 'before' | 'failover' | 'after' = 'before';
  const membership = async () => {
    const m = await mds.listCacheNodes();
    if (phase === 'failover' && !m.rebuilding) phase = 'after';
    return m;
  };
  const group = new GroupBlockCache({ membership, refreshMs: 100 });
  let beating = true;
  try {
    for (const n of nodes) await beat(n);
    await group.start();
    assert.deepEqual([...group.members], nodes);
    // Node 0 keeps heartbeating throughout (to whoever leads); node 1 falls silent now.
    const heartbeats = (async () => {
      while (beating) {
        await beat(nodes[0]!).catch(() => {});
        await new Promise((r) => setTimeout(r, 300));
      }
    })();
    const leader = (await mds.clusterStatus()).mds.find((m) => m.leader)!.address;
    let smallest = nodes.length;
    // Sampled between refreshes: an answer is applied in the same turn the wrapper sees it.
    const watch = setInterval(() => {
      if (phase === 'failover') smallest = Math.min(smallest, group.members.length);
    }, 20);
    try {
      phase = 'failover';
      await procs.get(leader)!.kill9();
      procs.delete(leader);
      // A new leader answers with the membership it is rebuilding (node 0 only), marked so.
      const rebuilt = await waitFor('the new leader lists node 0', async () => {
        const m = await mds.listCacheNodes().catch(() => null);
        return m && m.nodes.length === 1 ? m : null;
      }, 30_000, 50);
      assert.equal(rebuilt.rebuilding, true);
      assert.deepEqual([...group.members], nodes, 'still both nodes while the new leader rebuilds');
      // Once the rebuild window is over, the silent node leaves the mount's ring.
      await waitFor('node 1 dropped after the rebuild', async () => group.members.length === 1, 30_000, 50);
    } finally {
      clearInterval(watch);
    }
    assert.equal(smallest, nodes.length, 'the mount never lost a live node during the failover');
    assert.deepEqual([...group.members], [nodes[0]]);
    assert.equal((await mds.listCacheNodes()).rebuilding, false);
    beating = false;
    await heartbeats;
  } finally {
    beating = false;
    group.close();
    mds.close();
  }
});
