// S3 outages cost seconds (issue 14 item 5): with the S3 server SIGSTOPped (it accepts
// connections and never answers, the worst case), close/fsync return within the S3 timeout —
// with success when the blocks could be staged on the local disk instead (they upload when
// S3 is back), with EIO otherwise — and reads of uncached data answer EIO within the same
// bound. Both modes; a short timeout.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { S3Adaptor, type S3AdaptorOptions } from '../../s3adaptor/adaptor.js';
import { MemoryChunkIdAllocator, MemorySliceStore } from '../../s3adaptor/memory-slice-store.js';
import type { ObjectStore } from '../../s3adaptor/object-store.js';
import { DiskCache } from '../../diskcache/index.js';
import { TierfsError } from '../../common/status.js';
import { startS3, type TestS3 } from '../support/s3.js';
import { tempDir } from '../support/tmp.js';
import { storeFor } from './fixture.js';

const KiB = 1024;
const BLOCK = 64 * KiB;
const TIMEOUT = 2_000;
/** What a caller may wait past the timeout: staging, the slice commit, timers. */
const SLACK = 1_500;

let s3: TestS3;
let store: ObjectStore;
let stopped = false;
const tmp = tempDir('tierfs-s3-outage-');

function stopS3(): void {
  process.kill(s3.proc.pid, 'SIGSTOP');
  stopped = true;
}
function contS3(): void {
  if (stopped) process.kill(s3.proc.pid, 'SIGCONT');
  stopped = false;
}

before(async () => {
  s3 = await startS3();
  store = storeFor(s3, { maxAttempts: 5, timeoutMs: 20_000 });
});
after(async () => {
  contS3();
  store.close();
  await s3.close();
  tmp.remove();
});

function adaptor(slices: MemorySliceStore, ids: MemoryChunkIdAllocator, extra: Partial<S3AdaptorOptions>): S3Adaptor {
  return new S3Adaptor({ fsId: 9, chunkSize: 4 * BLOCK, blockSize: BLOCK, objectStore: store, sliceStore: slices, chunkIds: ids, s3TimeoutMs: TIMEOUT, readaheadBlocks: 0, ...extra });
}

function pattern(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 13 + seed) & 0xff;
  return b;
}

async function timed<T>(p: Promise<T>): Promise<{ ms: number; value?: T; err?: unknown }> {
  const t0 = Date.now();
  try {
    const value = await p;
    return { ms: Date.now() - t0, value };
  } catch (err) {
    return { ms: Date.now() - t0, err };
  }
}

function assertEio(err: unknown, what: string): void {
  assert.ok(err instanceof TierfsError, `${what}: a TierfsError (${String(err)})`);
  assert.equal(err.errno, constants.errno.EIO, `${what}: EIO (${err.code}: ${err.message})`);
}

test('default mode, S3 stopped: fsync returns success within the timeout with the blocks staged locally; they upload when S3 is back', async (t) => {
  const slices = new MemorySliceStore();
  const ids = new MemoryChunkIdAllocator();
  const disk = await DiskCache.open({ dir: `${tmp.path}/default`, capacityBytes: 64 * 2 ** 20, store, retryBaseMs: 50, retryMaxMs: 200 });
  const a = adaptor(slices, ids, { diskCache: disk });
  const data = pattern(3 * BLOCK + 100, 1);
  try {
    await a.write(1, 0, data);
    stopS3();
    const r = await timed(a.fsync(1));
    assert.equal(r.err, undefined, `fsync succeeded (${String(r.err)})`);
    assert.ok(r.ms < TIMEOUT + SLACK, `fsync returned in ${r.ms} ms`);
    t.diagnostic(`fsync with S3 stopped: success in ${r.ms} ms`);
    const flushed = await timed(a.flush(1)); // close: nothing left to wait for
    assert.equal(flushed.err, undefined);
    assert.ok(flushed.ms < TIMEOUT + SLACK, `close returned in ${flushed.ms} ms`);
    assert.equal(a.stats().outageStagedBlocks, 4);
    assert.equal(disk.stats().stagedBlocks, 4, 'cache stats shows the staged blocks');
    contS3();
    await disk.flush();
    assert.equal(disk.stats().stagedBlocks, 0);
    const fresh = adaptor(slices, ids, {});
    assert.ok((await fresh.read(1, 0, data.length, data.length)).equals(data), 'every byte in S3');
    await fresh.close();
  } finally {
    contS3();
    await a.close();
    await disk.close();
  }
});

test('default mode without a disk cache, S3 stopped: fsync answers EIO within the timeout', async (t) => {
  const a = adaptor(new MemorySliceStore(), new MemoryChunkIdAllocator(), {});
  try {
    await a.write(2, 0, pattern(2 * BLOCK, 2));
    stopS3();
    const r = await timed(a.fsync(2));
    assertEio(r.err, 'fsync');
    assert.ok(r.ms < TIMEOUT + SLACK, `fsync answered in ${r.ms} ms`);
    t.diagnostic(`fsync without a disk cache: EIO in ${r.ms} ms`);
  } finally {
    contS3();
    await a.close().catch(() => {});
  }
});

test('S3 stopped: a read of uncached data answers EIO within the timeout; cached data is still read', async (t) => {
  const slices = new MemorySliceStore();
  const ids = new MemoryChunkIdAllocator();
  const w = adaptor(slices, ids, {});
  const data = pattern(2 * BLOCK, 3);
  await w.write(3, 0, data);
  await w.flush(3);
  await w.close();
  const r0 = adaptor(slices, ids, {});
  assert.ok((await r0.read(3, 0, BLOCK, data.length)).equals(data.subarray(0, BLOCK))); // block 0 now in memory
  try {
    stopS3();
    const r = await timed(r0.read(3, BLOCK, BLOCK, data.length));
    assertEio(r.err, 'read');
    assert.ok(r.ms < TIMEOUT + SLACK, `read answered in ${r.ms} ms`);
    t.diagnostic(`uncached read: EIO in ${r.ms} ms`);
    const cached = await timed(r0.read(3, 0, BLOCK, data.length));
    assert.ok(cached.value?.equals(data.subarray(0, BLOCK)), 'cached block still served');
    assert.ok(cached.ms < 500);
  } finally {
    contS3();
    await r0.close();
  }
});

test('writeback with a full cache disk, S3 stopped: fsync never blocks past the timeout (EIO); with room it stages at once', async (t) => {
  const slices = new MemorySliceStore();
  const ids = new MemoryChunkIdAllocator();
  // A cache too small for one block: nothing can be staged.
  const full = await DiskCache.open({ dir: `${tmp.path}/full`, capacityBytes: BLOCK / 2, store });
  const roomy = await DiskCache.open({ dir: `${tmp.path}/roomy`, capacityBytes: 64 * 2 ** 20, store, retryBaseMs: 50, retryMaxMs: 200 });
  const a = adaptor(slices, ids, { diskCache: full, writeback: true });
  const b = adaptor(slices, ids, { diskCache: roomy, writeback: true });
  try {
    await a.write(4, 0, pattern(2 * BLOCK, 4));
    await b.write(5, 0, pattern(2 * BLOCK, 5));
    stopS3();
    const r = await timed(a.fsync(4));
    assertEio(r.err, 'fsync with a full cache disk');
    assert.ok(r.ms < TIMEOUT + SLACK, `fsync answered in ${r.ms} ms`);
    t.diagnostic(`writeback, full cache disk: EIO in ${r.ms} ms`);
    const ok = await timed(b.fsync(5));
    assert.equal(ok.err, undefined);
    assert.ok(ok.ms < 1_000, `staged at once (${ok.ms} ms)`);
    assert.equal(roomy.stats().stagedBlocks, 2);
    contS3();
    await roomy.flush();
  } finally {
    contS3();
    await a.close().catch(() => {});
    await b.close();
    await full.close();
    await roomy.close();
  }
});
