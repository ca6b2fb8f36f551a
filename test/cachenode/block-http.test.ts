// The cache node's block data plane (HTTP/1.1 GET /blocks/KEY) against the mount's client:
// blocks come back whole with their CRC, misses are misses, a block of another length is
// reported as damaged without being read, and callers without the cluster key are refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { crc32 } from 'node:zlib';
import { NodeBlockStore } from '../../cachenode/block-store.js';
import { startBlockHttpServer } from '../../cachenode/block-http.js';
import { BlockHttpClient, CRC_HEADER } from '../../s3adaptor/cache-node-http.js';
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

test('a node that goes silent costs one timeout; one that keeps sending is not cut off, however long the block takes', async () => {
  const size = 64 * 1024;
  const piece = size / 8;
  // One server, two behaviours: /blocks/slow... sends a piece every 150 ms (1.2 s in all, past
  // the 1 s timeout), /blocks/stuck... sends headers and half the body, then nothing.
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-length': size, [CRC_HEADER]: '0' });
    let sent = 0;
    const stuck = req.url!.startsWith('/blocks/stuck');
    const tick = setInterval(() => {
      if (stuck && sent >= size / 2) return;
      res.write(Buffer.alloc(piece, 1));
      sent += piece;
      if (sent >= size) {
        clearInterval(tick);
        res.end();
      }
    }, 150);
    res.on('close', () => clearInterval(tick));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const client = new BlockHttpClient(`127.0.0.1:${(server.address() as AddressInfo).port}`, { key: null, tls: null });
  try {
    const slow = await client.get('slow_1', size, 1_000);
    assert.equal(slow.data.length, size);
    const t0 = Date.now();
    await assert.rejects(client.get('stuck_1', size, 1_000), /abort/i);
    const ms = Date.now() - t0;
    assert.ok(ms >= 1_000 && ms < 8_000, `gave up after ${ms} ms`);
  } finally {
    client.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});
