// The mount's side of the cache group against fake cache nodes (in-process gRPC): a node
// that serves damaged bytes is caught by the mount's own length + CRC check, and a node that
// does not answer costs one short timeout, then is skipped — never an error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import { handler, loadProto, startGrpcServer, type RunningServer } from '../../common/grpc.js';
import { ok } from '../../common/status.js';
import type { ProtoGrpcType as CacheNodeProto } from '../../proto/gen/cachenode.js';
import { S3Adaptor } from '../../s3adaptor/adaptor.js';
import { GroupBlockCache } from '../../s3adaptor/cache-group.js';
import { MemoryChunkIdAllocator, MemorySliceStore } from '../../s3adaptor/memory-slice-store.js';
import { MemoryObjectStore } from '../../s3adaptor/memory-object-store.js';

const BLOCK = 64 * 1024;

async function fakeNode(
  getBlock: (key: string, size: number) => Promise<{ found: boolean; data?: Buffer; crc32?: number }>,
  putBlock: (key: string) => Promise<boolean> = async () => true,
): Promise<RunningServer> {
  const def = loadProto<CacheNodeProto>('cachenode.proto').tierfs.cachenode.CacheNodeService.service;
  const evicted: string[] = [];
  return startGrpcServer('127.0.0.1:0', [
    [
      def,
      {
        GetBlock: handler(async (req: { key: string; size: number }) => ({ ...(await getBlock(req.key, Number(req.size))), status: ok() })),
        PutBlock: handler(async (req: { key: string }) => ({ stored: await putBlock(req.key), status: ok() })),
        HasBlocks: handler(async (req: { keys: string[] }) => ({ present: req.keys.map(() => false), status: ok() })),
        EvictBlocks: handler(async (req: { keys: string[] }) => {
          evicted.push(...req.keys);
          return { blocks: req.keys.length, bytes: 0, status: ok() };
        }),
        Stats: handler(async () => ({ status: ok() })),
      },
    ],
  ]);
}

/** A file of `blocks` blocks written through an adaptor to an in-memory object store. */
async function setup(blocks = 3) {
  const store = new MemoryObjectStore();
  const slices = new MemorySliceStore();
  const ids = new MemoryChunkIdAllocator();
  const base = { fsId: 2, chunkSize: 8 * BLOCK, blockSize: BLOCK, objectStore: store, sliceStore: slices, chunkIds: ids };
  const w = new S3Adaptor(base);
  const data = Buffer.alloc(blocks * BLOCK);
  for (let i = 0; i < data.length; i++) data[i] = (i * 5 + (i >> 10)) & 0xff;
  await w.write(1, 0, data);
  await w.flush(1);
  await w.close();
  return { base, data, store };
}

test('a node serving damaged bytes is caught by the mount (length + CRC): counted, dropped, read from S3', async () => {
  const { base, data } = await setup();
  const node = await fakeNode(async (_key, size) => {
    const bad = Buffer.alloc(size, 0x41);
    return { found: true, data: bad, crc32: crc32(Buffer.alloc(size, 0x42)) };
  });
  const g = new GroupBlockCache({ membership: async () => ({ nodes: [{ address: node.address }], epoch: 1 }) });
  await g.start();
  const a = new S3Adaptor({ ...base, cacheGroup: g, readaheadBlocks: 0 });
  try {
    assert.ok((await a.read(1, 0, data.length, data.length)).equals(data));
    assert.equal(g.stats().corrupt, 3);
    assert.equal(a.stats().read.s3Fetches, 3);
    a.checkInvariants();
  } finally {
    await a.close();
    g.close();
    await node.close();
  }
});

test('a node that does not answer costs one short timeout, then is skipped; reads never fail', async () => {
  const { base, data } = await setup();
  const node = await fakeNode(() => new Promise(() => {})); // never answers
  const g = new GroupBlockCache({ membership: async () => ({ nodes: [{ address: node.address }], epoch: 1 }), timeoutMs: 300, suspendMs: 60_000 });
  await g.start();
  const a = new S3Adaptor({ ...base, cacheGroup: g, readaheadBlocks: 0 });
  try {
    const t0 = Date.now();
    assert.ok((await a.read(1, 0, data.length, data.length)).equals(data));
    const ms = Date.now() - t0;
    assert.ok(ms < 1_500, `one timeout, not one per block (${ms} ms)`);
    // The three blocks were asked for at once: their timeouts ran side by side.
    const errors = g.stats().nodeErrors;
    assert.ok(errors >= 1 && errors <= 3, `${errors} node errors`);
    a.invalidate(1);
    await a.evict(1);
    const t1 = Date.now();
    assert.ok((await a.read(1, 0, data.length, data.length)).equals(data));
    assert.ok(Date.now() - t1 < 250, 'the suspended node is skipped: no second timeout');
    assert.equal(g.stats().nodeErrors, errors);
    assert.ok(g.stats().skipped >= 3);
  } finally {
    await a.close();
    g.close();
    await node.close().catch(() => {});
  }
});

test('a cold sequential read with several reads in flight (as the kernel sends them) GETs each block once, and asks its node once', async () => {
  const blocks = 24;
  const { base, data, store } = await setup(blocks);
  // A node that holds nothing and answers slowly: demand reads and readahead race over it.
  const asked = new Map<string, number>();
  const node = await fakeNode(async (key) => {
    asked.set(key, (asked.get(key) ?? 0) + 1);
    await new Promise((r) => setTimeout(r, 15));
    return { found: false };
  });
  const g = new GroupBlockCache({ membership: async () => ({ nodes: [{ address: node.address }], epoch: 1 }) });
  await g.start();
  store.latencyMs = 5;
  const a = new S3Adaptor({ ...base, cacheGroup: g, readaheadBlocks: 8 });
  try {
    // Four quarter-block reads at a time, like the kernel's readahead of a FUSE file.
    const piece = BLOCK / 4;
    for (let off = 0; off < data.length; off += 4 * piece) {
      const reads = Array.from({ length: 4 }, (_, i) => a.read(1, off + i * piece, piece, data.length));
      const got = await Promise.all(reads);
      got.forEach((b, i) => assert.ok(b.equals(data.subarray(off + i * piece, off + (i + 1) * piece)), `bytes at ${off + i * piece}`));
    }
    assert.equal(store.ops.get + store.ops.rangedGet, blocks, 'one GET per block');
    assert.equal(a.stats().read.s3Fetches, blocks);
    assert.equal([...asked.values()].filter((n) => n > 1).length, 0, 'each block asked of its node once');
    assert.equal(asked.size, blocks);
    a.checkInvariants();
  } finally {
    await a.close();
    g.close();
    await node.close();
  }
});

test('a reader faster than the group takes blocks: admissions back off past the backlog (the reader never waits) until it drains to half, then resume', async () => {
  const { base, data } = await setup(24);
  let putting = 0;
  let peak = 0;
  let open = false;
  const waiting: Array<() => void> = [];
  const node = await fakeNode(
    async () => ({ found: false }),
    async () => {
      peak = Math.max(peak, ++putting);
      if (!open) await new Promise<void>((r) => waiting.push(r)); // the node takes a block when the test lets it
      putting--;
      return true;
    },
  );
  const g = new GroupBlockCache({ membership: async () => ({ nodes: [{ address: node.address }], epoch: 1 }) });
  await g.start();
  const a = new S3Adaptor({ ...base, cacheGroup: g, readaheadBlocks: 0, admitBacklogBytes: 4 * BLOCK });
  const handed = async (n: number) => {
    for (let i = 0; i < 500 && g.stats().handedBlocks < n; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(g.stats().handedBlocks, n);
  };
  const letOneIn = async () => {
    for (let i = 0; i < 500 && waiting.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    waiting.shift()!();
  };
  try {
    // 20 blocks read while the node takes none: 4 wait in the backlog, 16 are skipped.
    assert.ok((await a.read(1, 0, 20 * BLOCK, data.length)).equals(data.subarray(0, 20 * BLOCK)), 'the reader got every byte without waiting for the node');
    assert.equal(a.stats().read.admissionsDropped, 16);
    // One taken: 3 blocks still waiting, above half the backlog, so the next block is skipped too.
    await letOneIn();
    await handed(1);
    await a.read(1, 20 * BLOCK, BLOCK, data.length);
    assert.equal(a.stats().read.admissionsDropped, 17);
    // Two taken: drained to half; the next blocks are handed to the group again.
    await letOneIn();
    await handed(2);
    open = true;
    waiting.splice(0).forEach((r) => r());
    await a.read(1, 21 * BLOCK, 3 * BLOCK, data.length);
    await a.blocksAdmitted();
    await handed(7);
    assert.equal(a.stats().read.admissionsDropped, 17);
    assert.ok(peak <= 4, `never more than the backlog in flight to the node (${peak})`);
    a.checkInvariants();
  } finally {
    await a.close();
    g.close();
    await node.close();
  }
});

test('a node that refuses a block (full) is not sent more for a while', async () => {
  const { base, data } = await setup();
  let puts = 0;
  const node = await fakeNode(
    async () => ({ found: false }),
    async () => {
      puts++;
      return false;
    },
  );
  const g = new GroupBlockCache({ membership: async () => ({ nodes: [{ address: node.address }], epoch: 1 }), suspendMs: 60_000 });
  await g.start();
  const a = new S3Adaptor({ ...base, cacheGroup: g, readaheadBlocks: 0 });
  try {
    for (let b = 0; b < 3; b++) {
      await a.read(1, b * BLOCK, BLOCK, data.length);
      await a.blocksAdmitted();
    }
    assert.equal(puts, 1, 'one refused block, then no more sent');
    assert.equal(g.stats().refused, 1);
    assert.equal(g.stats().notOffered, 2);
    assert.equal(g.stats().handedBlocks, 0);
    assert.equal(g.stats().hits, 0);
  } finally {
    await a.close();
    g.close();
    await node.close();
  }
});
