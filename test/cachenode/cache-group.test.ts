// The cache group: cache nodes (tierfs cachenode, child processes) registered with an MDS,
// mounts (S3Adaptors) reading memory -> disk -> group -> S3 over a real s3rver.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { S3Adaptor, type S3AdaptorOptions } from '../../s3adaptor/adaptor.js';
import { GroupBlockCache, HashRing } from '../../s3adaptor/cache-group.js';
import { MemoryChunkIdAllocator, MemorySliceStore } from '../../s3adaptor/memory-slice-store.js';
import type { ObjectStore } from '../../s3adaptor/object-store.js';
import { MdsClient } from '../../mds/client.js';
import { NodeBlockStore } from '../../cachenode/block-store.js';
import { silentLogger } from '../../common/log.js';
import { startS3, type TestS3 } from '../support/s3.js';
import { spawnDaemon, type Spawned } from '../support/process.js';
import { tempDir } from '../support/tmp.js';
import { storeFor } from '../s3adaptor/fixture.js';
import { spawnMds, waitFor, type MdsReady } from '../mds/helpers.js';

const KiB = 1024;
const BLOCK = 256 * KiB;
const FILE = 8 * BLOCK + 1000;
const tmp = tempDir('tierfs-cachegroup-');
let s3: TestS3;
let store: ObjectStore;
let mdsProc: Spawned<MdsReady>;
let mds: MdsClient;
const nodes: Array<Spawned<{ address: string }> | null> = [];
const slices = new MemorySliceStore();
const ids = new MemoryChunkIdAllocator();
const groups: GroupBlockCache[] = [];

function pattern(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7 + seed + (i >> 10)) & 0xff;
  return b;
}

function startNode(i: number, extra: string[] = []): Promise<Spawned<{ address: string }>> {
  return spawnDaemon<{ address: string }>(
    ['cachenode', '--listen', '127.0.0.1:0', '--data-dir', join(tmp.path, `node${i}`), '--mds', mdsProc.info.address, ...extra],
    { logFile: join(tmp.path, `node${i}.log`), readyTimeoutMs: 30_000 },
  );
}

async function group(): Promise<GroupBlockCache> {
  const g = new GroupBlockCache({ membership: () => mds.listCacheNodes(), refreshMs: 200, timeoutMs: 1_000, suspendMs: 10_000 });
  await g.start();
  groups.push(g);
  return g;
}

function adaptor(extra: Partial<S3AdaptorOptions> = {}): S3Adaptor {
  return new S3Adaptor({ fsId: 7, chunkSize: 4 * BLOCK, blockSize: BLOCK, objectStore: store, sliceStore: slices, chunkIds: ids, s3TimeoutMs: 3_000, ...extra });
}

async function writeFile(ino: number, seed: number): Promise<Buffer> {
  const data = pattern(FILE, seed);
  const w = adaptor();
  await w.write(ino, 0, data);
  await w.flush(ino);
  await w.close();
  return data;
}

before(async () => {
  s3 = await startS3();
  store = storeFor(s3, { maxAttempts: 2, timeoutMs: 5_000 });
  mdsProc = await spawnMds(['--listen', '127.0.0.1:0', '--data-dir', join(tmp.path, 'mds')], tmp.path);
  mds = new MdsClient(mdsProc.info.address);
  nodes.push(await startNode(0), await startNode(1));
  await waitFor('two cache nodes registered', async () => (await mds.listCacheNodes()).nodes.length === 2, 15_000);
});

after(async () => {
  for (const g of groups) g.close();
  mds.close();
  for (const n of nodes) await n?.stop();
  await mdsProc.stop();
  store.close();
  await s3.close();
  tmp.remove();
});

test('consistent hashing: adding a node moves about 1/N of the blocks, all to it; losing one moves only its share', () => {
  const keys = Array.from({ length: 20_000 }, (_, i) => `abcd_7_${i % 97}_${i}_0_0`);
  const four = new HashRing(['a:1', 'b:1', 'c:1', 'd:1']);
  const five = new HashRing(['a:1', 'b:1', 'c:1', 'd:1', 'e:1']);
  const three = new HashRing(['a:1', 'b:1', 'c:1']);
  let moved = 0;
  let lost = 0;
  const share = new Map<string, number>();
  for (const k of keys) {
    const before = four.nodeFor(k)!;
    const after = five.nodeFor(k)!;
    share.set(before, (share.get(before) ?? 0) + 1);
    if (before !== after) {
      moved++;
      assert.equal(after, 'e:1', 'a moved block goes to the new node');
    }
    if (before !== 'd:1') assert.equal(three.nodeFor(k), before, 'losing d moves only d\'s blocks');
    else lost++;
  }
  const frac = moved / keys.length;
  assert.ok(frac > 0.14 && frac < 0.26, `moved ${(frac * 100).toFixed(1)} % (ideal 20 %)`);
  for (const [n, c] of share) assert.ok(c / keys.length > 0.15 && c / keys.length < 0.35, `${n} holds ${c}`);
  assert.ok(lost > 0);
});

test('nodes register with the MDS and heartbeat capacity and usage; the status shows them', async () => {
  const st = await mds.clusterStatus();
  assert.equal(st.cache_nodes.length, 2);
  for (const n of st.cache_nodes) {
    assert.equal(n.state, 'ONLINE');
    assert.ok(Number(n.capacity_bytes) > 0);
    assert.match(n.block_address, /^127\.0\.0\.1:\d+$/, 'the block data plane is published');
  }
});

test('a cold read hands blocks to the group; warmup fills it; a second mount reads every byte from the group with S3 stopped', async (t) => {
  const data = await writeFile(10, 1);
  const g1 = await group();
  const first = adaptor({ cacheGroup: g1, readaheadBlocks: 0 });
  assert.ok((await first.read(10, 0, FILE, FILE)).equals(data));
  await waitFor('blocks handed to the group', () => g1.stats().handedBlocks === 9, 10_000);
  assert.equal(first.stats().read.s3Fetches, 9);
  // warmup finds everything there already
  const w = await first.warmup(10, FILE, { group: true });
  assert.equal(w.blocks, 9);
  assert.equal(w.fetchedBlocks, 0);
  await first.close();

  const data2 = await writeFile(11, 2);
  const warmer = adaptor({ cacheGroup: await group() });
  const w2 = await warmer.warmup(11, FILE, { group: true });
  assert.deepEqual([w2.blocks, w2.fetchedBlocks, w2.bytes], [9, 9, FILE]);
  await warmer.close();

  process.kill(s3.proc.pid, 'SIGSTOP');
  try {
    const g2 = await group();
    const second = adaptor({ cacheGroup: g2 });
    const t0 = Date.now();
    assert.ok((await second.read(10, 0, FILE, FILE)).equals(data), 'file 10 from the group');
    assert.ok((await second.read(11, 0, FILE, FILE)).equals(data2), 'file 11 (warmed) from the group');
    t.diagnostic(`two files read from the group with S3 stopped in ${Date.now() - t0} ms`);
    assert.equal(second.stats().read.s3Fetches, 0);
    assert.equal(second.stats().read.groupHits, 18);
    second.checkInvariants();
    await second.close();
  } finally {
    process.kill(s3.proc.pid, 'SIGCONT');
  }
});

test('a cache node killed mid-read: the read completes from S3, no error', async (t) => {
  const data = await writeFile(12, 3);
  const warmer = adaptor({ cacheGroup: await group() });
  await warmer.warmup(12, FILE, { group: true });
  await warmer.close();
  const g = await group();
  const reader = adaptor({ cacheGroup: g, readaheadBlocks: 0 });
  const buf = Buffer.alloc(64 * KiB);
  const t0 = Date.now();
  for (let off = 0, i = 0; off < FILE; off += buf.length, i++) {
    if (i === 2) await nodes[1]!.kill9();
    const n = await reader.readInto(12, off, buf, FILE);
    assert.ok(buf.subarray(0, n).equals(data.subarray(off, off + n)), `bytes at ${off}`);
  }
  t.diagnostic(`read with a node killed: ${Date.now() - t0} ms, ${reader.stats().read.s3Fetches} blocks from S3, ${g.stats().nodeErrors} node errors`);
  assert.ok(reader.stats().read.s3Fetches > 0, 'the dead node\'s blocks came from S3');
  assert.ok(reader.stats().read.groupHits > 0, 'the live node\'s blocks came from the group');
  await reader.close();
  nodes[1] = null;
  await waitFor('the killed node leaves the group', async () => (await mds.listCacheNodes()).nodes.length === 1, 15_000);
});

test('a node serving a damaged block: detected, dropped, read from S3, counted', async () => {
  const data = await writeFile(13, 4);
  const warmer = adaptor({ cacheGroup: await group() });
  await warmer.warmup(13, FILE, { group: true });
  await warmer.close();
  // Damage every block file of node 0 (the only node left): flip a byte in the middle.
  const dir = join(tmp.path, 'node0', 'blocks', 'read');
  const { readdirSync } = await import('node:fs');
  const files = readdirSync(dir).filter((n) => n.includes('_7_13_'));
  assert.ok(files.length > 0);
  for (const f of files) {
    const b = readFileSync(join(dir, f));
    b[Math.floor(b.length / 2)] ^= 0xff;
    writeFileSync(join(dir, f), b);
  }
  const reader = adaptor({ cacheGroup: await group() });
  assert.ok((await reader.read(13, 0, FILE, FILE)).equals(data), 'every byte right');
  assert.equal(reader.stats().read.s3Fetches, 9);
  await reader.close();
  await waitFor('corrupt blocks reported to the MDS', async () => Number((await mds.clusterStatus()).cache_nodes.find((n) => n.state === 'ONLINE')?.corrupt_blocks ?? 0) >= files.length, 10_000);
});

test('a node keeps to its capacity: least recently used blocks are evicted past the watermark', async () => {
  const s = await NodeBlockStore.open({
    dir: join(tmp.path, 'small'),
    capacityBytes: 4 * BLOCK,
    maxFiles: 1000,
    trimHighWatermark: 0.9,
    trimLowWatermark: 0.5,
    admitWatermark: 0.95,
    logger: silentLogger,
  });
  try {
    const { crc32 } = await import('node:zlib');
    for (let i = 0; i < 12; i++) {
      const b = pattern(BLOCK / 2, i);
      await s.put(`k_${i}`, b, crc32(b));
    }
    await s.trimmed();
    const st = s.stats();
    assert.ok(st.used_bytes <= 4 * BLOCK, `used ${st.used_bytes}`);
    assert.ok(st.evicted_blocks > 0, 'evicted');
    assert.ok((await s.get('k_11', BLOCK / 2)) !== null, 'the newest block stays');
    assert.equal(await s.get('k_0', BLOCK / 2), null, 'the oldest went');
    const bad = pattern(100, 1);
    assert.equal(await s.put('k_bad', bad, crc32(bad) ^ 1), false, 'a block whose CRC does not match is refused');
  } finally {
    await s.close();
  }
});
