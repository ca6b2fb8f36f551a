// Three MDS processes over a real etcd: one leads, the others answer NOT_LEADER with a hint;
// kill -9 of the leader hands leadership over within the session TTL plus a few seconds,
// and chunk ids allocated through the failover never repeat.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { CHANNEL_OPTIONS, loadProto, unary } from '../../common/grpc.js';
import type { ProtoGrpcType } from '../../proto/gen/mds.js';
import type { ListFsResponse__Output } from '../../proto/gen/tierfs/mds/ListFsResponse.js';
import { MdsClient } from '../../mds/client.js';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { tempDir } from '../support/tmp.js';
import { freePort } from '../support/ports.js';
import type { Spawned } from '../support/process.js';
import { spawnMds, waitFor, type MdsReady } from './helpers.js';

const TTL_S = 3;
const tmp = tempDir('tierfs-mds-ha-');
let etcd: TestEtcd;
const procs = new Map<string, Spawned<MdsReady>>();
let addresses: string[] = [];
let argsOf: (address: string) => string[];

/** Asks one MDS directly (no leader following): its status code and hint. */
async function probe(address: string): Promise<{ code: string; hint: string }> {
  const Ctor = loadProto<ProtoGrpcType>('mds.proto').tierfs.mds.MdsService;
  const c = new Ctor(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
  try {
    const res = await unary<object, ListFsResponse__Output>(c, 'ListFs', {}, 2000);
    return { code: res.status?.code ?? '?', hint: res.status?.leader_hint ?? '' };
  } catch {
    return { code: 'DOWN', hint: '' };
  } finally {
    c.close();
  }
}

/** The one MDS answering OK, once every other live one answers NOT_LEADER hinting at it. */
async function settledLeader(live: string[]): Promise<string> {
  return waitFor('one leader, standbys hinting at it', async () => {
    const answers = await Promise.all(live.map(probe));
    const leaders = live.filter((_, i) => answers[i]!.code === 'OK');
    if (leaders.length !== 1) return null;
    const ok = answers.every((a, i) => live[i] === leaders[0] || (a.code === 'NOT_LEADER' && a.hint === leaders[0]));
    return ok ? leaders[0]! : null;
  }, 30_000, 100);
}

before(async () => {
  etcd = await startEtcd();
  addresses = await Promise.all([0, 1, 2].map(async () => `127.0.0.1:${await freePort()}`));
  argsOf = (address) => ['--listen', address, '--etcd', etcd.endpoint, '--data-dir', `${tmp.path}/${address}`,
    '--set', `etcd.sessionTtlS=${TTL_S}`, '--set', 's3.headBucket=false', '--set', 'ids.chunkIdBundle=20'];
  await Promise.all(addresses.map(async (a, i) => procs.set(a, await spawnMds(argsOf(a), tmp.path, `mds-${i}`))));
});

after(async () => {
  await Promise.all([...procs.values()].map((p) => p.stop()));
  await etcd.close();
  tmp.remove();
});

test('one leader, standbys answer NOT_LEADER with its address; failover keeps filesystems and ids unique', async () => {
  const leader = await settledLeader(addresses);
  const client = new MdsClient(addresses, { deadlineMs: 30_000 });
  try {
    const s3 = { endpoint: 'http://127.0.0.1:9', bucket: 'tierfs-test', access_key: 'a', secret_key: 'b', region: '', key_prefix: '' };
    const fs = await client.createFs({ name: 'ha-fs', s3 });
    const status = await client.clusterStatus();
    assert.deepEqual(status.mds.map((m) => m.address).sort(), [...addresses].sort());
    assert.deepEqual(status.mds.filter((m) => m.leader).map((m) => m.address), [leader]);

    // Allocate continuously from one client while the leader is killed.
    const ranges: Array<[number, number]> = [];
    let stop = false;
    let failure: unknown = null;
    const allocating = (async () => {
      let n = 1;
      while (!stop) {
        try {
          const r = await client.allocateChunkIds(fs.fs_id, n);
          ranges.push([r.start, r.count]);
        } catch (err) {
          failure = err;
          return;
        }
        n = (n % 13) + 1;
      }
    })();
    await waitFor('allocations before the failover', async () => ranges.length >= 30);
    await procs.get(leader)!.kill9();
    procs.delete(leader);
    const before = ranges.length;
    const survivors = addresses.filter((a) => a !== leader);
    const killedAt = Date.now();
    const next = await settledLeader(survivors);
    const tookMs = Date.now() - killedAt;
    assert.notEqual(next, leader);
    assert.ok(tookMs < (TTL_S + 15) * 1000, `new leader after ${tookMs} ms`);
    await waitFor('allocations after the failover', async () => ranges.length >= before + 30, 30_000);
    stop = true;
    await allocating;
    assert.equal(failure, null, `allocation failed: ${String(failure)}`);

    const ids = new Set<number>();
    for (const [start, count] of ranges) {
      for (let i = start; i < start + count; i++) {
        assert.equal(ids.has(i), false, `chunk id ${i} handed out twice`);
        ids.add(i);
      }
    }
    const info = await client.getFsInfo('ha-fs');
    assert.equal(info.fs_id, fs.fs_id);

    // A leader frozen past its session TTL (SIGSTOP) is replaced, and when it wakes up it
    // refuses at once instead of serving as a second leader.
    const frozen = procs.get(next)!;
    frozen.proc.kill('SIGSTOP');
    const others = survivors.filter((a) => a !== next);
    let thawed = false;
    try {
      await waitFor('a leader while the old one is frozen', async () => (await probe(others[0]!)).code === 'OK', 30_000);
    } finally {
      frozen.proc.kill('SIGCONT');
      thawed = true;
    }
    assert.ok(thawed);
    const woke = await probe(next);
    assert.notEqual(woke.code, 'OK', 'a deposed leader must not serve after waking up');
    assert.equal((await settledLeader(survivors)), others[0]);

    // The killed MDS comes back as a standby pointing at the new leader.
    procs.set(leader, await spawnMds(argsOf(leader), tmp.path, 'mds-restarted'));
    const final = await settledLeader(addresses);
    const after = await waitFor('three members', async () => {
      const st = await client.clusterStatus();
      return st.mds.length === 3 ? st : null;
    });
    assert.deepEqual(after.mds.filter((m) => m.leader).map((m) => m.address), [final]);
    assert.equal((await client.getFsInfo(fs.fs_id)).name, 'ha-fs');
  } finally {
    client.close();
  }
});
