// Three metaserver processes on loopback: copysets and partitions created through the
// CopysetService (as the MDS would), concurrent clients, kill -9 of a copyset leader in
// the middle of their work, then a replacement replica that catches up by snapshot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from '../../common/grpc.js';
import { RemoteMetaClient, type PartitionDirectory, type PartitionLocationInfo } from '../../metaserver/client.js';
import { S_IFDIR, S_IFREG } from '../../metaserver/meta-client.js';
import { tempDir } from '../support/tmp.js';
import { copysetCall, copysetStatusOn, leaderOf, onLeader, startMetaProc, type MetaProc } from './cluster-support.js';
import type { StatusResponse__Output } from '../../proto/gen/tierfs/copyset/StatusResponse.js';

const file = { mode: S_IFREG | 0o644, uid: 0, gid: 0, exclusive: true };
const dir = { mode: S_IFDIR | 0o755, uid: 0, gid: 0, exclusive: true };

async function listAll(c: RemoteMetaClient, parent: number): Promise<string[]> {
  const names: string[] = [];
  for (let last = ''; ; ) {
    const page = await c.listDentries(parent, last, 64);
    if (page.length === 0) return names;
    names.push(...page.map((d) => d.name));
    last = page[page.length - 1]!.name;
  }
}

test('3 metaservers: concurrent clients survive kill -9 of a leader; a replacement replica catches up by snapshot', async () => {
  const tmp = tempDir('tierfs-mscluster-');
  const procs: MetaProc[] = [];
  const clients: RemoteMetaClient[] = [];
  try {
    for (let i = 0; i < 3; i++) procs.push(await startMetaProc(tmp.path, `ms${i}`));
    const members = new Map<number, string[]>();
    for (const cs of [1, 2]) {
      members.set(cs, procs.map((p) => p.address));
      for (const p of procs) await onLeader([p.address], 'CreateCopyset', { pool_id: 1, copyset_id: cs, peers: members.get(cs) });
    }
    const partitions: PartitionLocationInfo[] = [];
    for (const [pid, cs, start] of [[1, 1, 1], [2, 2, 10_001], [3, 1, 20_001], [4, 2, 30_001]] as const) {
      const partition = { fs_id: 1, pool_id: 1, copyset_id: cs, partition_id: pid, start, end: start + 9_999 };
      await onLeader(members.get(cs)!, 'CreatePartition', { partition });
      partitions.push({ partition, peers: members.get(cs)!, leader: '', read_only: false });
    }
    const directory: PartitionDirectory = {
      listPartitions: async () => partitions.map((p) => ({ ...p, peers: members.get(p.partition!.copyset_id)! })),
      createPartitions: async () => partitions,
      getCopysetLocation: async (_pool, cs) => ({ peers: members.get(cs)!, leader: '' }),
    };

    // Each client works in its own directory and keeps a model of what it must contain.
    const workers = 4;
    const steps = 30;
    let progress = 0;
    const models: Array<Set<string>> = [];
    const dirs: number[] = [];
    const work = async (w: number) => {
      const c = new RemoteMetaClient({ fsId: 1, mds: directory, deadlineMs: 40_000 });
      clients.push(c);
      const d = await c.createNode(1, `w${w}`, dir);
      dirs[w] = d.ino;
      const model = new Set<string>();
      models[w] = model;
      for (let k = 0; k < steps; k++) {
        const f = await c.createNode(d.ino, `f${k}`, file);
        model.add(`f${k}`);
        if (k % 3 === 0) {
          await c.rename(d.ino, `f${k}`, d.ino, `g${k}`);
          model.delete(`f${k}`);
          model.add(`g${k}`);
        }
        if (k % 5 === 0) {
          const name = model.has(`g${k}`) ? `g${k}` : `f${k}`;
          const after = await c.unlink(d.ino, name);
          assert.equal(after.nlink, 0);
          await c.releaseOrphan(f.ino);
          model.delete(name);
        }
        if (k % 7 === 0 && model.size > 0) {
          // Across partitions (the root's partition vs this directory's).
          const name = [...model][0]!;
          await c.rename(d.ino, name, 1, `moved-${w}-${k}`);
          await c.rename(1, `moved-${w}-${k}`, d.ino, `m${k}`);
          model.delete(name);
          model.add(`m${k}`);
        }
        progress++;
      }
    };
    const running = Promise.all(Array.from({ length: workers }, (_, w) => work(w)));
    let failed = false;
    running.catch(() => (failed = true));

    // Kill the leader of the root's copyset while the clients are busy.
    while (progress < (workers * steps) / 3 && !failed) await sleep(20);
    const dead = await leaderOf(members.get(1)!, 1, 1);
    const victim = procs.find((p) => p.address === dead)!;
    await victim.proc.kill9();
    assert.ok(progress < workers * steps, 'the leader died while the clients were working');
    await running;
    assert.ok(clients.reduce((n, c) => n + c.rpc.retries, 0) > 0, 'clients retried on the new leader');

    const c = clients[0]!;
    for (let w = 0; w < workers; w++) {
      const names = await listAll(c, dirs[w]!);
      assert.deepEqual(names.sort(), [...models[w]!].sort(), `directory w${w} holds exactly the acknowledged names`);
    }
    assert.deepEqual((await listAll(c, 1)).sort(), Array.from({ length: workers }, (_, w) => `w${w}`).sort());
    assert.equal((await c.getInode(1)).nlink, 2 + workers);
    // Nothing applied twice and nothing leaked: inode count = root + dirs + live files (the trash emptied).
    const expected = 1 + workers + models.reduce((n, m) => n + m.size, 0);
    const until = Date.now() + 60_000;
    while ((await c.usage()).inodes !== expected && Date.now() < until) await sleep(100);
    assert.equal((await c.usage()).inodes, expected);

    // Replace the dead replica; the log was compacted (threshold 200), so the newcomer needs a snapshot.
    const fresh = await startMetaProc(tmp.path, 'ms3', {}, { TIERFS_LOG_LEVEL: 'info' });
    procs.push(fresh);
    const alive = members.get(1)!.filter((a) => a !== dead);
    await onLeader(alive, 'ChangePeer', { pool_id: 1, copyset_id: 1, peer: fresh.address, old_peer: dead });
    members.set(1, [...alive, fresh.address]);
    const leader = await leaderOf(alive, 1, 1);
    const until2 = Date.now() + 60_000;
    for (;;) {
      const [a, b] = await Promise.all([copysetStatusOn(leader, 1, 1), copysetStatusOn(fresh.address, 1, 1)]);
      if (b.copyset && a.copyset && b.copyset.applied_index >= a.copyset.commit_index && a.copyset.peers.length === 3) break;
      assert.ok(Date.now() < until2, 'the new replica catches up');
      await sleep(100);
    }
    assert.match(readFileSync(join(tmp.path, 'ms3.log'), 'utf8'), /restored from snapshot/);
    // Serve from the new replica: everything is there.
    await onLeader(alive, 'TransferLeader', { pool_id: 1, copyset_id: 1, peer: fresh.address });
    assert.equal(await leaderOf(members.get(1)!, 1, 1), fresh.address);
    for (let w = 0; w < workers; w++) assert.deepEqual((await listAll(c, dirs[w]!)).sort(), [...models[w]!].sort());

    // A member removed from the group drops the copyset and its data when told (the MDS's
    // REMOVE_COPYSET): a removed follower need not learn of its removal through Raft.
    const leaving = alive[0]!;
    await onLeader(members.get(1)!, 'RemovePeer', { pool_id: 1, copyset_id: 1, peer: leaving });
    members.set(1, members.get(1)!.filter((a) => a !== leaving));
    assert.equal((await copysetCall<StatusResponse__Output>(leaving, 'DeleteCopyset', { pool_id: 1, copyset_id: 1 })).status?.code, 'OK');
    assert.equal((await copysetStatusOn(leaving, 1, 1)).status?.code, 'NOT_FOUND');
    assert.equal((await copysetStatusOn(leaving, 1, 2)).status?.code, 'OK');
    assert.deepEqual((await listAll(c, 1)).sort(), Array.from({ length: workers }, (_, w) => `w${w}`).sort());
  } finally {
    for (const c of clients) await c.close();
    for (const p of procs) await p.proc.stop();
    tmp.remove();
  }
});
