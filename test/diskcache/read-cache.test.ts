// ReadCache.readInto: small reads are a pread on the loop's thread until one is slow (the page
// cache did not hold it); small reads then go through libuv's pool for a while. Either way the
// bytes are the block's.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ReadCache } from '../../diskcache/read-cache.js';
import { tempDir } from '../support/tmp.js';

const tmp = tempDir('tierfs-readcache-');
after(() => tmp.remove());

const block = Buffer.from(Array.from({ length: 256 * 1024 }, (_, i) => (i * 7) & 0xff));

async function cacheWith(name: string, slowSyncReadMs?: number): Promise<ReadCache> {
  const dir = join(tmp.path, name);
  mkdirSync(dir, { recursive: true });
  const cache = new ReadCache(dir, 8, () => undefined, slowSyncReadMs);
  await cache.insert('k', block);
  return cache;
}

test('a slow pread on the loop\'s thread sends the next small reads to the pool; the bytes are right both ways', async () => {
  const cache = await cacheWith('slow', -1); // every pread on the loop's thread counts as slow
  const a = Buffer.alloc(4096);
  assert.equal(await cache.readInto('k', block.length, 8192, 4096, a, 0), true);
  assert.deepEqual(a, block.subarray(8192, 8192 + 4096));
  assert.equal(cache.slowSyncReads, 1);
  const b = Buffer.alloc(4096);
  assert.equal(await cache.readInto('k', block.length, 12288, 4096, b, 0), true);
  assert.deepEqual(b, block.subarray(12288, 12288 + 4096));
  assert.equal(cache.slowSyncReads, 1, 'the second read went through the pool');
  cache.close();
});

test('fast preads stay on the loop\'s thread; reads past 64 KiB use the pool', async () => {
  const cache = await cacheWith('fast', 60_000);
  for (let i = 0; i < 20; i++) {
    const t = Buffer.alloc(4096);
    assert.equal(await cache.readInto('k', block.length, i * 4096, 4096, t, 0), true);
    assert.deepEqual(t, block.subarray(i * 4096, i * 4096 + 4096));
  }
  const big = Buffer.alloc(128 * 1024);
  assert.equal(await cache.readInto('k', block.length, 65536, big.length, big, 0), true);
  assert.deepEqual(big, block.subarray(65536, 65536 + big.length));
  assert.equal(cache.slowSyncReads, 0);
  cache.close();
});
