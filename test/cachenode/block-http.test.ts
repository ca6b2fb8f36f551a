// The cache node's block data plane (HTTP/1.1 GET /blocks/KEY) against the mount's client:
// blocks come back whole with their CRC, misses are misses, a block of another length is
// reported as damaged without being read, and callers without the cluster key are refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import { NodeBlockStore } from '../../cachenode/block-store.js';
import { startBlockHttpServer } from '../../cachenode/block-http.js';
import { BlockHttpClient } from '../../s3adaptor/cache-node-http.js';
import { silentLogger } from '../../common/log.js';
import { tempDir } from '../support/tmp.js';

test('blocks over the HTTP data plane: whole with their CRC, misses, damaged lengths, and the cluster key', async () => {
  const dir = tempDir('tierfs-blockhttp-');
  const store = await NodeBlockStore.open({ dir: dir.path, capacityBytes: 64 * 2 ** 20, maxFiles: 100, trimHighWatermark: 0.9, trimLowWatermark: 0.8, admitWatermark: 0.95, logger: silentLogger });
  const auth = { key: Buffer.from('the-cluster-key'), tls: null };
  const server = await startBlockHttpServer(store, '127.0.0.1', 0, auth, silentLogger);
  const client = new BlockHttpClient(server.address, auth);
  const stranger = new BlockHttpClient(server.address, { key: Buffer.from('another-key'), tls: null });
  try {
    const data = Buffer.alloc(3 * 2 ** 20 + 17);
    for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 0xff;
    assert.equal(await store.put('ab_1_2_3_4_0', data, crc32(data)), true);

    const got = await client.get('ab_1_2_3_4_0', data.length, 5_000);
    assert.equal(got.found, true);
    assert.ok(got.data.equals(data));
    assert.equal(got.crc32, crc32(data));

    assert.equal((await client.get('ab_1_2_3_5_0', 100, 5_000)).found, false);
    // Asked with another length than the node holds: damaged, no body read.
    const short = await client.get('ab_1_2_3_4_0', data.length + 1, 5_000);
    assert.equal(short.found, false, 'the node checks the length it was asked for and answers a miss');
    await assert.rejects(stranger.get('ab_1_2_3_4_0', data.length, 5_000), /HTTP 401/);
    await assert.rejects(client.get('../../etc/passwd', 10, 5_000), /HTTP 400/);
    assert.equal(store.counts.hits, 1);
  } finally {
    client.close();
    stranger.close();
    await server.close();
    await store.close();
    dir.remove();
  }
});
