// BlockWriteQueue against a scripted copyset: every batch the queue sends waits until the
// test answers it, so ordering, batching, overlay, the dirty limit and failures are checked
// at exact points. (Against real chunkservers: test/e2e/volume-writeback.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChunkWrite } from '../../chunkserver/chunk-client.js';
import { BLOCK, type BlockWrite, BlockWriteQueue } from '../../blockclient/write-queue.js';

interface Sent {
  copyset: number;
  writes: ChunkWrite[];
  answer(err?: Error): void;
}

function scripted(opts: { maxDirtyBytes?: number; maxBatchBytes?: number; maxBatchesPerCopyset?: number } = {}) {
  const sent: Sent[] = [];
  /** What the copysets hold: "chunk:offset" -> first byte of each committed block. */
  const stored = new Map<string, number>();
  const q = new BlockWriteQueue({
    maxDirtyBytes: opts.maxDirtyBytes ?? 64 * BLOCK,
    maxBatchBytes: opts.maxBatchBytes ?? 16 * BLOCK,
    maxBatchesPerCopyset: opts.maxBatchesPerCopyset ?? 1,
    send: (_pool, copyset, writes) =>
      new Promise<void>((resolve, reject) => {
        sent.push({
          copyset, writes,
          answer: (err) => {
            if (err) return reject(err);
            for (const w of writes) for (let o = 0; o < w.data.length; o += BLOCK) stored.set(`${w.chunkId}:${w.offset + o}`, w.data[o]!);
            resolve();
          },
        });
      }),
  });
  return { q, sent, stored };
}

/** Block `vb` of a volume with 16-block chunks, chunk i in copyset i % 2, filled with `byte`. */
const block = (vb: number, byte: number): BlockWrite => ({
  vb, poolId: 1, copysetId: Math.floor(vb / 16) % 2, chunkId: 100 + Math.floor(vb / 16), chunkOffset: (vb % 16) * BLOCK, data: Buffer.alloc(BLOCK, byte),
});

const settled = async (p: Promise<unknown>): Promise<boolean> => {
  let done = false;
  void p.then(() => (done = true), () => (done = true));
  await new Promise((r) => setImmediate(r));
  return done;
};

test('blocks of one copyset leave as one batch with adjacent blocks joined; commit resolves on the answer', async () => {
  const { q, sent, stored } = scripted({ maxBatchesPerCopyset: 1 });
  const first = q.put([block(0, 1)]); // goes at once, alone
  const more = q.put([block(1, 2), block(2, 3), block(3, 4), block(9, 5), block(16, 6)]);
  assert.equal(sent.length, 2, 'one batch per copyset: copyset 0 busy with block 0, copyset 1 sends block 16');
  assert.equal(await settled(first), false);
  sent[0]!.answer();
  await first;
  assert.equal(sent.length, 3, 'the answer lets the next batch of copyset 0 go');
  assert.deepEqual(sent[2]!.writes.map((w) => [w.chunkId, w.offset, w.data.length]), [[100, BLOCK, 3 * BLOCK], [100, 9 * BLOCK, BLOCK]]);
  assert.equal(await settled(more), false, 'block 16 and the batch are not answered yet');
  sent[1]!.answer();
  sent[2]!.answer();
  await more;
  assert.equal(stored.get(`100:${2 * BLOCK}`), 3);
  assert.equal(q.dirtyBytes, 0);
  assert.deepEqual(q.counters, { batches: 3, blocks: 6 });
});

test('a block written again while in flight waits for that batch: the newer bytes land last', async () => {
  const { q, sent, stored } = scripted({ maxBatchesPerCopyset: 4 });
  const old = q.put([block(5, 1)]);
  const newer = q.put([block(5, 2)]);
  assert.equal(sent.length, 1, 'the newer version is held while the older is in flight, even with room for more batches');
  assert.deepEqual(q.overlay(5, 1).map(([i, b]) => [i, b[0]]), [[0, 2]], 'reads see the newest bytes');
  sent[0]!.answer();
  await old;
  assert.equal(sent.length, 2);
  assert.equal(stored.get(`100:${5 * BLOCK}`), 1);
  sent[1]!.answer();
  await newer;
  assert.equal(stored.get(`100:${5 * BLOCK}`), 2);
  assert.deepEqual(q.overlay(0, 16), [], 'nothing to patch once committed');
});

test('a queued block replaced before it was sent: both writers are done when the newest bytes commit', async () => {
  const { q, sent } = scripted({ maxBatchesPerCopyset: 1 });
  const busy = q.put([block(0, 9)]);
  const a = q.put([block(1, 1)]);
  const b = q.put([block(1, 2)]);
  assert.equal(q.dirtyBytes, 2 * BLOCK, 'the replaced block no longer counts');
  sent[0]!.answer();
  await busy;
  assert.equal(sent[1]!.writes.length, 1);
  assert.equal(sent[1]!.writes[0]!.data[0], 2, 'only the newest bytes are sent');
  assert.equal(await settled(a), false);
  sent[1]!.answer();
  await Promise.all([a, b]);
});

test('writers wait for room under the dirty limit; flush waits for everything', async () => {
  const { q, sent } = scripted({ maxDirtyBytes: 4 * BLOCK, maxBatchBytes: 2 * BLOCK, maxBatchesPerCopyset: 1 });
  void q.put([block(0, 1), block(1, 1), block(2, 1), block(3, 1)]);
  const room = q.reserve(BLOCK);
  assert.equal(await settled(room), false, 'the limit is reached');
  const drained = q.drained();
  sent[0]!.answer(); // 2 blocks committed
  await room;
  assert.equal(await settled(drained), false);
  sent[1]!.answer();
  await drained;
});

test('a batch that fails fails its writers, everything queued, every later write and drain', async () => {
  const { q, sent } = scripted({ maxBatchesPerCopyset: 1 });
  const a = q.put([block(0, 1)]);
  const queued = q.put([block(1, 1)]);
  sent[0]!.answer(new Error('no leader answered'));
  await assert.rejects(a, /could not be committed.*no leader answered/);
  await assert.rejects(queued, /could not be committed/);
  assert.equal(sent.length, 1, 'nothing more is sent');
  assert.equal(q.dirtyBytes, 0);
  await assert.rejects(q.drained(), /could not be committed/);
  await assert.rejects(q.put([block(2, 1)]), /could not be committed/);
  await assert.rejects(q.reserve(BLOCK), /could not be committed/);
  assert.deepEqual(q.overlay(0, 4), [], 'failed bytes are not served as if written');
});

test('bad limits and partial blocks are refused', () => {
  assert.throws(() => new BlockWriteQueue({ maxDirtyBytes: BLOCK, maxBatchBytes: 2 * BLOCK, maxBatchesPerCopyset: 1, send: async () => {} }), /maxBatchBytes/);
  const { q } = scripted();
  assert.throws(() => q.put([{ ...block(0, 1), data: Buffer.alloc(100) }]), /has 100 bytes/);
});
