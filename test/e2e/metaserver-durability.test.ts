// kill -9 of the metaserver leading the copyset being written, in the middle of a stream of
// creates, renames, unlinks and unlinks into the recycle bin (one TrashNode entry each) from
// 32 concurrent workers through one RemoteMetaClient
// (batched RPCs, one Raft entry per operation), and 8 more through a client that gives up
// after 300 ms, so operations in flight at the kill fail. Afterwards every acknowledged operation is
// there, every operation that failed is all-or-nothing, no inode leaked or went missing
// (the partition's inode count adds up once the trash is purged), and the killed server,
// restarted and made leader again, serves the same namespace from its own disk.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RemoteMetaClient } from '../../metaserver/client.js';
import { S_IFDIR, S_IFREG, type Dentry } from '../../metaserver/meta-client.js';
import { listTrash } from '../../metaserver/trash-bin.js';
import { copysetStatusOn, leaderOf, onLeader } from '../metaserver/cluster-support.js';
import { startCluster, waitFor, type TestCluster } from './support/cluster.js';

type Outcome =
  | { kind: 'create'; name: string }
  | { kind: 'rename'; from: string; to: string; ino: number }
  | { kind: 'unlink'; name: string; ino: number }
  | { kind: 'trash'; name: string; ino: number };

/** What the workers were told: names acknowledged present (-> ino), and operations that failed. */
interface Ledger {
  present: Map<string, number>;
  /** Acknowledged unlinks: these inodes must be gone from the namespace. */
  unlinked: Set<number>;
  /** Acknowledged moves into the bin: inode -> the name it had. */
  trashed: Map<number, string>;
  failed: Outcome[];
  acked: number;
}

async function listAll(c: RemoteMetaClient, dir: number): Promise<Dentry[]> {
  const out: Dentry[] = [];
  for (let last = ''; ; ) {
    const page = await c.listDentries(dir, last, 1000);
    out.push(...page);
    if (page.length < 1000) return out;
    last = page[page.length - 1]!.name;
  }
}

/** One worker: its own names, a fixed pseudo-random mix of create, rename and unlink. */
async function worker(c: RemoteMetaClient, dir: number, w: number, ledger: Ledger, stop: () => boolean): Promise<void> {
  const mine: string[] = [];
  let seed = w * 7919 + 1;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let i = 0; !stop(); i++) {
    const r = rand();
    if (mine.length < 3 || r < 0.5) {
      const name = `w${w}-c${i}`;
      try {
        const inode = await c.createNode(dir, name, { mode: S_IFREG | 0o644, uid: 0, gid: 0, exclusive: true });
        ledger.present.set(name, inode.ino);
        mine.push(name);
        ledger.acked++;
      } catch {
        ledger.failed.push({ kind: 'create', name });
      }
    } else if (r < 0.75) {
      const from = mine.splice(Math.floor(rand() * mine.length), 1)[0]!;
      const to = `w${w}-r${i}`;
      const ino = ledger.present.get(from)!;
      try {
        await c.rename(dir, from, dir, to);
        ledger.present.delete(from);
        ledger.present.set(to, ino);
        mine.push(to);
        ledger.acked++;
      } catch {
        ledger.present.delete(from);
        ledger.failed.push({ kind: 'rename', from, to, ino });
      }
    } else if (r < 0.875) {
      const name = mine.splice(Math.floor(rand() * mine.length), 1)[0]!;
      const ino = ledger.present.get(name)!;
      try {
        const res = await c.removeToTrash(dir, name, false);
        assert.ok(res.entry, 'a file with one name moves into the bin');
        ledger.present.delete(name);
        ledger.trashed.set(ino, name);
        ledger.acked++;
      } catch {
        ledger.present.delete(name);
        ledger.failed.push({ kind: 'trash', name, ino });
      }
    } else {
      const name = mine.splice(Math.floor(rand() * mine.length), 1)[0]!;
      const ino = ledger.present.get(name)!;
      try {
        await c.unlink(dir, name, { releaseIno: ino });
        ledger.present.delete(name);
        ledger.unlinked.add(ino);
        ledger.acked++;
      } catch {
        ledger.present.delete(name);
        ledger.failed.push({ kind: 'unlink', name, ino });
      }
    }
  }
}

/** Names in the recycle bin's entries (all shards), by inode. */
async function binned(c: RemoteMetaClient): Promise<Map<number, { name: string; dir: number }>> {
  const { entries } = await listTrash(c);
  return new Map(entries.map((e) => [e.ino, { name: e.name, dir: e.dir }]));
}

/** Checks the namespace against the ledger; returns how many files the directory and the bin hold. */
async function verify(c: RemoteMetaClient, dir: number, ledger: Ledger): Promise<{ files: number; inBin: number }> {
  const listed = new Map((await listAll(c, dir)).map((d) => [d.name, d.ino]));
  const bin = await binned(c);
  for (const [ino, name] of ledger.trashed) {
    assert.equal(bin.get(ino)?.name, name, `acknowledged move of ${name} into the bin is there`);
    const inode = await c.getInode(ino);
    assert.equal(inode.nlink, 1, `${name} in the bin: one link`);
    assert.deepEqual(inode.parents, [bin.get(ino)!.dir], `${name} in the bin: parent list`);
  }
  for (const [name, ino] of ledger.present) assert.equal(listed.get(name), ino, `acknowledged ${name} -> ${ino} is there`);
  const explained = new Set(ledger.present.keys());
  for (const f of ledger.failed) {
    if (f.kind === 'create') {
      explained.add(f.name);
      const ino = listed.get(f.name);
      if (ino !== undefined) assert.deepEqual((await c.getInode(ino)).parents, [dir], `a failed create ${f.name} that happened happened whole`);
    } else if (f.kind === 'rename') {
      explained.add(f.from).add(f.to);
      const at = [listed.get(f.from), listed.get(f.to)].filter((x) => x !== undefined);
      assert.deepEqual(at, [f.ino], `a failed rename ${f.from} -> ${f.to} left exactly one of the names`);
    } else if (f.kind === 'trash') {
      explained.add(f.name);
      const here = listed.get(f.name) === f.ino;
      assert.notEqual(here, bin.has(f.ino), `a failed move of ${f.name} into the bin left it in exactly one place`);
    } else {
      explained.add(f.name);
      const ino = listed.get(f.name);
      if (ino !== undefined) assert.equal(ino, f.ino);
    }
  }
  for (const ino of bin.keys()) {
    assert.ok(ledger.trashed.has(ino) || ledger.failed.some((f) => f.kind === 'trash' && f.ino === ino), `bin entry ${ino} was moved there by an operation`);
  }
  for (const name of listed.keys()) assert.ok(explained.has(name), `${name} was created by an operation`);
  for (const [name, ino] of listed) {
    assert.ok(!ledger.unlinked.has(ino), `unlinked inode ${ino} is not back as ${name}`);
    const inode = await c.getInode(ino);
    assert.equal(inode.nlink, 1, `${name}: one link`);
    assert.deepEqual(inode.parents, [dir], `${name}: parent list`);
  }
  return { files: listed.size, inBin: bin.size };
}

describe('metaserver kill -9 during a stream of metadata operations', () => {
  let cluster: TestCluster | undefined;
  before(async () => {
    cluster = await startCluster('durable');
  });
  after(async () => {
    await cluster?.close();
  });

  test('every acknowledged create, rename and unlink survives; failed ones are all-or-nothing; nothing leaks', async (t) => {
    const cl = cluster!;
    const fsId = (await cl.client.getFsInfo(cl.fsName)).fs_id;
    const c = new RemoteMetaClient({ fsId, mds: cl.client, deadlineMs: 60_000 });
    const impatient = new RemoteMetaClient({ fsId, mds: cl.client, deadlineMs: 300 });
    try {
      const dir = (await c.createNode(1, 'stream', { mode: S_IFDIR | 0o755, uid: 0, gid: 0, exclusive: true })).ino;
      const route = await c.router.route(dir);
      const peers = route.peers;
      const ledger: Ledger = { present: new Map(), unlinked: new Set(), trashed: new Map(), failed: [], acked: 0 };
      // The bin and its shard are made once, before the kill (each client finds them afterwards).
      const warm = await c.createNode(dir, 'warm', { mode: S_IFREG | 0o644, uid: 0, gid: 0, exclusive: true });
      await c.removeToTrash(dir, 'warm', false);
      ledger.trashed.set(warm.ino, 'warm');
      let stopping = false;
      const workers = Array.from({ length: 40 }, (_, w) => worker(w < 32 ? c : impatient, dir, w, ledger, () => stopping));
      try {
        await waitFor('operations under way', () => ledger.acked >= 300, 120_000, 20);
        const victimAddr = await leaderOf(peers, route.poolId, route.copysetId);
        const victim = cl.metas.findIndex((m) => m.address === victimAddr);
        assert.ok(victim >= 0);
        const ackedAtKill = ledger.acked;
        await cl.metas[victim]!.proc.kill9();
        // The stream goes on through the new leader.
        await waitFor('operations acknowledged after the kill', () => ledger.acked >= ackedAtKill + 600, 180_000, 50);
        stopping = true;
        await Promise.all(workers);
        t.diagnostic(`${ledger.acked} operations acknowledged, ${ledger.failed.length} failed (${ackedAtKill} before the kill)`);

        const { files, inBin } = await verify(c, dir, ledger);
        assert.ok(files > 0);
        assert.ok(ledger.trashed.size > 0, 'some moves into the bin were acknowledged');
        // No inode leaked or vanished: the root, the directory, the files, /.trash with its
        // shard and what is in it; the deletion trash (released at unlink, in the same entry)
        // empties in the background.
        await waitFor('the trash to empty and the inode count to add up', async () => (await c.usage()).inodes === 2 + files + 2 + inBin, 60_000);

        // The killed server restarts from its disk, catches up, leads, and serves the same.
        await cl.restartMeta(victim);
        const addr = cl.metas[victim]!.address;
        await waitFor('the restarted replica to catch up', async () => {
          const leader = await leaderOf(peers, route.poolId, route.copysetId);
          const [a, b] = await Promise.all([copysetStatusOn(leader, route.poolId, route.copysetId), copysetStatusOn(addr, route.poolId, route.copysetId)]);
          return b.copyset!.applied_index >= a.copyset!.commit_index;
        }, 60_000);
        await onLeader(peers, 'TransferLeader', { pool_id: route.poolId, copyset_id: route.copysetId, peer: addr });
        await waitFor('the restarted replica to lead', async () => (await leaderOf(peers, route.poolId, route.copysetId)) === addr, 30_000);
        assert.deepEqual(await verify(c, dir, ledger), { files, inBin });
      } finally {
        stopping = true;
        await Promise.allSettled(workers);
      }
    } finally {
      await c.close();
      await impatient.close();
    }
  });
});
