// Placement and scheduling against fake metaservers (real gRPC, in-process): copysets in
// distinct zones, partitions through the copyset leader, recovery of a lost replica to a
// healthy server in another zone, removal of the stale replica, and leader balancing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mdsConfigSchema } from '../../mds/config.js';
import { MdsNode } from '../../mds/server.js';
import { MdsClient } from '../../mds/client.js';
import { CopysetCaller } from '../../mds/copyset-caller.js';
import { tempDir } from '../support/tmp.js';
import { FakeMetaServer, World } from './fake-metaserver.js';
import { waitFor } from './helpers.js';

const s3 = { endpoint: 'http://127.0.0.1:9', bucket: 'tierfs-test', access_key: 'a', secret_key: 'b', region: '', key_prefix: '' };

/** Waits until every server leads exactly one copyset and no operator is in flight. */
async function balancedLeaders(client: MdsClient): Promise<void> {
  await waitFor('balanced leaders', async () => {
    const s = await client.clusterStatus();
    return s.metaservers.every((m) => m.leader_count === 1) && s.operators.length === 0;
  }, 20_000);
}

async function cluster(sets: Record<string, unknown>, servers: Array<[zone: string, host: string]>, leaderPick: 'first' | 'last' = 'first') {
  const tmp = tempDir('tierfs-mds-sched-');
  const config = mdsConfigSchema.parse({
    listen: '127.0.0.1:0', dataDir: tmp.path,
    health: { unstableAfterMs: 1500, offlineAfterMs: 2500, checkIntervalMs: 100, ...(sets.health as object) },
    scheduler: { intervalMs: 200, operatorTimeoutMs: 20_000, ...(sets.scheduler as object) },
    copysets: sets.copysets, partitions: { perFs: 3, size: 1000, createTimeoutMs: 10_000 },
    s3: { headBucket: false },
  });
  const mds = await MdsNode.start(config);
  assert.ok(await mds.waitLeading(10_000));
  const world = new World(leaderPick);
  const fakes: FakeMetaServer[] = [];
  for (const [zone, host] of servers) {
    const f = new FakeMetaServer(world, zone, host);
    await f.start([mds.address], 100);
    fakes.push(f);
  }
  const client = new MdsClient([mds.address]);
  return {
    mds, world, fakes, client,
    close: async () => {
      client.close();
      for (const f of fakes) await f.stop();
      await mds.close();
      tmp.remove();
    },
  };
}

test('a copyset that loses a replica gets CHANGE_PEER to a healthy server in another zone, and the dead one drops it', async () => {
  const c = await cluster(
    { copysets: { replicas: 3, total: 1 }, scheduler: { balanceCopysets: false, balanceLeaders: false } },
    [['z1', 'a'], ['z2', 'b'], ['z3', 'c'], ['z1', 'd'], ['z4', 'e']],
    'last',
  );
  try {
    const [a, b, cc, d, e] = c.fakes as [FakeMetaServer, FakeMetaServer, FakeMetaServer, FakeMetaServer, FakeMetaServer];
    const fs = await c.client.createFs({ name: 'sched', s3 });
    assert.equal(fs.status, 'INITED');
    const parts = await c.client.listPartitions(fs.fs_id);
    assert.equal(parts.length, 3);
    assert.deepEqual(parts.map((p) => p.partition!.start), [1, 1001, 2001]);
    const peers = parts[0]!.peers;
    assert.deepEqual(new Set(peers.map((p) => c.world.servers.get(p)!.zone)).size, 3, 'replicas in distinct zones');
    assert.deepEqual([...peers].sort(), [a.address, b.address, cc.address].sort());
    // The last peer (c) leads: CreatePartition went to a first and followed its hint.
    await waitFor('leader known', async () => (await c.client.listPartitions(fs.fs_id))[0]!.leader === cc.address);
    assert.equal(c.world.copysets.values().next().value!.partitions.length, 3, 'partitions created through the leader');
    // Without a known leader, a request to the first peer follows the NOT_LEADER hint.
    const caller = new CopysetCaller();
    try {
      const before = a.redirected;
      const p0 = parts[0]!.partition!;
      const reached = await caller.createPartition({ ...p0, partition_id: 999, start: 900_001, end: 901_000 }, peers, '', 5000);
      assert.equal(reached, cc.address);
      assert.equal(a.redirected, before + 1);
    } finally {
      caller.close();
    }

    // b stops heartbeating: after it goes OFFLINE, the leader (c) is told to replace it with
    // e (z4), the only candidate in a zone the remaining replicas (z1, z3) do not use.
    b.alive = false;
    await waitFor('CHANGE_PEER delivered', async () => cc.received.find((ch) => ch.type === 'CHANGE_PEER'), 20_000);
    const change = cc.received.find((ch) => ch.type === 'CHANGE_PEER')!;
    assert.equal(change.peer, e.address);
    assert.equal(change.old_peer, b.address);
    assert.equal(a.received.length + d.received.length, 0, 'only the leader gets the operator');
    assert.equal(e.createCalls.length, 0, 'the MDS leaves creating the copyset on the newcomer to the leader');
    const status = await waitFor('copyset healthy with e', async () => {
      const st = await c.client.clusterStatus();
      const cs = st.copysets[0]!;
      return cs.peers.includes(e.address) && !cs.peers.includes(b.address) && st.operators.length === 0 ? st : null;
    }, 20_000);
    assert.equal(status.copysets[0]!.health, 'HEALTHY');
    assert.equal(status.metaservers.find((m) => m.address === b.address)!.state, 'OFFLINE');
    const loc = await c.client.getCopysetLocation(status.copysets[0]!.pool_id, status.copysets[0]!.copyset_id);
    assert.deepEqual([...loc.peers].sort(), [a.address, cc.address, e.address].sort());

    // b comes back with its stale view: it is told to drop the copyset.
    b.alive = true;
    await waitFor('REMOVE_COPYSET to b', async () => b.received.some((ch) => ch.type === 'REMOVE_COPYSET'), 10_000);
    assert.equal(b.created.size, 0);
    const back = await c.client.clusterStatus();
    assert.equal(back.metaservers.find((m) => m.address === b.address)!.state, 'ONLINE');
  } finally {
    await c.close();
  }
});

test('leaders are balanced with TRANSFER_LEADER and copysets are created lazily', async () => {
  const c = await cluster(
    { copysets: { replicas: 3, total: 3 }, scheduler: { balanceCopysets: false, balanceLeaders: true } },
    [['z1', 'a'], ['z2', 'b'], ['z3', 'c']],
  );
  try {
    assert.equal((await c.client.clusterStatus()).copysets.length, 0, 'no copysets before the first fs');
    await c.client.createFs({ name: 'bal', s3, partition_count: 3 });
    const st = await c.client.clusterStatus();
    assert.equal(st.copysets.length, 3);
    assert.deepEqual(st.copysets.map((cs) => cs.partition_count), [1, 1, 1], 'partitions spread over the least-loaded copysets');
    // The fake elects the first peer of each copyset; whatever that gives, the scheduler
    // must end with every server leading exactly one copyset.
    await balancedLeaders(c.client);
    // Every copyset starts with peers [a, b, c] in that order, so a led all three at first.
    const transfers = c.fakes[0]!.received.filter((ch) => ch.type === 'TRANSFER_LEADER');
    assert.equal(new Set(transfers.map((ch) => ch.copyset_id)).size, 2);
    const more = await c.client.createPartitions((await c.client.getFsInfo('bal')).fs_id, 2);
    assert.equal(more.length, 5);
    assert.equal(new Set(more.map((p) => p.partition!.partition_id)).size, 5);
  } finally {
    await c.close();
  }
});

/** Every TRANSFER_LEADER any fake received, as "copyset -> peer". */
const transfers = (fakes: FakeMetaServer[]) => fakes.flatMap((f) => f.received.filter((ch) => ch.type === 'TRANSFER_LEADER').map((ch) => `${ch.copyset_id} -> ${ch.peer}`));

test('no operator targets a dead copyset leader, even while it still counts as ONLINE', async () => {
  // Issue 14: 3 s after a kill -9 of a copyset leader the MDS, still counting it ONLINE,
  // moved a leader *to* it (balance-leaders). Here the dead server stays ONLINE for 30 s.
  const c = await cluster(
    {
      copysets: { replicas: 3, total: 3 }, health: { unstableAfterMs: 30_000, offlineAfterMs: 60_000 },
      scheduler: { balanceCopysets: false, balanceLeaders: true, targetFreshMs: 600 },
    },
    [['z1', 'a'], ['z2', 'b'], ['z3', 'c']],
  );
  try {
    await c.client.createFs({ name: 'dead', s3, partition_count: 3 });
    await balancedLeaders(c.client);
    const [a] = c.fakes as [FakeMetaServer];
    const before = transfers(c.fakes).length;
    a.alive = false; // its copyset's leadership falls to the next live peer, which now leads two
    await new Promise((r) => setTimeout(r, 3000));
    const st = await c.client.clusterStatus();
    assert.equal(st.metaservers.find((m) => m.address === a.address)!.state, 'ONLINE', 'still ONLINE by the health checker');
    assert.deepEqual(transfers(c.fakes).slice(before).filter((t) => t.endsWith(a.address)), [], 'no leadership sent to the dead server');
    assert.deepEqual(st.operators, []);
  } finally {
    await c.close();
  }
});

test('no operator targets a server a copyset leader reports unreachable; balancing resumes when it is heard again', async () => {
  const c = await cluster(
    { copysets: { replicas: 3, total: 3 }, scheduler: { balanceCopysets: false, balanceLeaders: true } },
    [['z1', 'a'], ['z2', 'b'], ['z3', 'c']],
  );
  try {
    const b = c.fakes[1]!;
    c.world.unreachable.add(b.address); // b heartbeats the MDS, but its copysets' leader cannot reach it
    await c.client.createFs({ name: 'cut', s3, partition_count: 3 });
    await new Promise((r) => setTimeout(r, 3000));
    assert.deepEqual(transfers(c.fakes).filter((t) => t.endsWith(b.address)), [], 'no leadership sent to the unreachable server');
    c.world.unreachable.clear();
    await balancedLeaders(c.client);
  } finally {
    await c.close();
  }
});
