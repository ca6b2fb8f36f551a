import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { LevelKv, EtcdKv, type KvStore } from '../../mds/kv.js';
import { BundledIdAllocator, reserveIds } from '../../mds/ids.js';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { tempDir } from '../support/tmp.js';
import { TierfsError } from '../../common/status.js';

let etcd: TestEtcd;
let client: Etcd3;
const dir = tempDir('tierfs-kv-');

before(async () => {
  etcd = await startEtcd();
  client = new Etcd3({ hosts: etcd.endpoint });
});
after(async () => {
  client.close();
  await etcd.close();
  dir.remove();
});

async function exercise(kv: KvStore): Promise<void> {
  assert.equal(await kv.get('a/1'), undefined);
  await kv.put('a/1', 'one');
  await kv.put('a/2', 'two');
  await kv.put('b/1', 'other');
  assert.equal(await kv.get('a/1'), 'one');
  assert.deepEqual(await kv.range('a/'), [{ key: 'a/1', value: 'one' }, { key: 'a/2', value: 'two' }]);
  await kv.delete('a/1');
  assert.equal(await kv.get('a/1'), undefined);
  assert.deepEqual((await kv.range('a/')).map((e) => e.key), ['a/2']);

  // compare-and-swap: create-if-absent, swap-if-equal, delete-if-equal
  assert.equal(await kv.cas('c', undefined, '1'), true);
  assert.equal(await kv.cas('c', undefined, '2'), false);
  assert.equal(await kv.cas('c', '0', '2'), false);
  assert.equal(await kv.cas('c', '1', '2'), true);
  assert.equal(await kv.get('c'), '2');
  assert.equal(await kv.cas('c', '2', undefined), true);
  assert.equal(await kv.get('c'), undefined);

  // concurrent reservations never overlap
  const starts = await Promise.all(Array.from({ length: 20 }, () => reserveIds(kv, 'ids/x', 10)));
  const ids = new Set<number>();
  for (const s of starts) for (let i = 0; i < 10; i++) ids.add(s + i);
  assert.equal(ids.size, 200);

  // bundled allocator: two allocators on one counter (an old and a new leader) never repeat ids
  const a1 = new BundledIdAllocator(kv, 'ids/chunk', 7);
  const a2 = new BundledIdAllocator(kv, 'ids/chunk', 7);
  const seen = new Set<number>();
  for (let i = 0; i < 30; i++) {
    const alloc = i % 2 ? a1 : a2;
    const n = 1 + (i % 5);
    const s = await alloc.allocate(n);
    for (let j = 0; j < n; j++) {
      assert.equal(seen.has(s + j), false, `id ${s + j} repeated`);
      seen.add(s + j);
    }
  }
}

test('LevelKv: get/put/delete/range/cas and id reservation; data survives reopen', async () => {
  const path = `${dir.path}/level`;
  const kv = await new LevelKv(path).open();
  await exercise(kv);
  await kv.close();
  const again = await new LevelKv(path).open();
  assert.equal(await again.get('a/2'), 'two');
  await again.close();
});

test('EtcdKv: get/put/delete/range/cas and id reservation under a prefix', async () => {
  const kv = new EtcdKv(client, '/kvtest/');
  await exercise(kv);
  assert.equal(await client.get('/kvtest/a/2').string(), 'two');
  assert.equal(await client.get('a/2').string(), null);
});

test('EtcdKv: fenced writes fail with NOT_LEADER once the fence key is gone', async () => {
  const kv = new EtcdKv(client, '/fenced/').fenced('/fence-key');
  await client.put('/fence-key').value('me');
  await kv.put('x', '1');
  assert.equal(await kv.cas('y', undefined, '1'), true);
  assert.equal(await kv.cas('y', undefined, '2'), false);
  await client.delete().key('/fence-key');
  const notLeader = (err: unknown) => err instanceof TierfsError && err.code === 'NOT_LEADER';
  await assert.rejects(kv.put('x', '2'), notLeader);
  await assert.rejects(kv.cas('y', '1', '3'), notLeader);
  await assert.rejects(kv.delete('x'), notLeader);
  assert.equal(await client.get('/fenced/x').string(), '1');
});
