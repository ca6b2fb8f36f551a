// The chunk-file pool and the chunk state machine on a real directory: take by rename,
// return on delete (zeroed before reuse), background refill, and crashes (a refill cut short,
// a chunk taken from the pool but its write not recorded as applied) recovered at open.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ChunkFilePool } from '../../chunkserver/chunk-pool.js';
import { ChunkStateMachine, encodeDelete, encodeWrite, encodeWritev } from '../../chunkserver/chunk-state.js';
import { tempDir } from '../support/tmp.js';

const CHUNK = 1 << 20;

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const c of it) out.push(c);
  return out;
}

async function* iter(chunks: Buffer[]): AsyncIterable<Buffer> {
  for (const c of chunks) yield c;
}

test('the pool fills to its target with zeroed files, take renames one out, refill tops it up', async () => {
  const tmp = tempDir('tierfs-pool-');
  try {
    const pool = new ChunkFilePool(join(tmp.path, 'pool'), { chunkSize: CHUNK, target: 3 }).open();
    await pool.settled();
    assert.equal(pool.level(), 3);
    const clean = readdirSync(join(tmp.path, 'pool', 'clean'));
    assert.equal(clean.length, 3);
    for (const f of clean) assert.equal(statSync(join(tmp.path, 'pool', 'clean', f)).size, CHUNK);

    const dest = join(tmp.path, 'c1');
    await pool.take(dest);
    assert.equal(statSync(dest).size, CHUNK);
    assert.ok(readFileSync(dest).every((b) => b === 0));
    await pool.settled();
    assert.equal(pool.level(), 3, 'refilled after the take');

    // Returned with data: zeroed by the refill before it is clean again.
    writeFileSync(dest, Buffer.alloc(CHUNK, 7));
    await pool.give(dest);
    assert.ok(!existsSync(dest));
    await pool.settled();
    assert.equal(pool.dirtyCount(), 0);
    assert.equal(pool.level(), 4, 'the returned file joined the clean ones');
    for (let i = 0; i < 4; i++) {
      const p = join(tmp.path, `t${i}`);
      await pool.take(p);
      assert.ok(readFileSync(p).every((b) => b === 0), 'every file taken reads as zeros');
    }
    // Empty pool: take makes a file on the spot.
    await pool.close();
    const empty = new ChunkFilePool(join(tmp.path, 'pool2'), { chunkSize: CHUNK, target: 0 }).open();
    await empty.take(join(tmp.path, 'e'));
    assert.equal(statSync(join(tmp.path, 'e')).size, CHUNK);
    await empty.close();
  } finally {
    tmp.remove();
  }
});

test('a crash in the middle of a refill or of a return is recovered at open', async () => {
  const tmp = tempDir('tierfs-pool-');
  try {
    const dir = join(tmp.path, 'pool');
    const pool = new ChunkFilePool(dir, { chunkSize: CHUNK, target: 1 }).open();
    await pool.settled();
    await pool.close();
    // A refill cut short (half-written tmp) and a returned file not zeroed yet.
    writeFileSync(join(dir, 'clean', '9.chunk.tmp'), Buffer.alloc(1000, 1));
    writeFileSync(join(dir, 'dirty', 'x.chunk'), Buffer.alloc(CHUNK, 5));
    const again = new ChunkFilePool(dir, { chunkSize: CHUNK, target: 1 }).open();
    assert.ok(!existsSync(join(dir, 'clean', '9.chunk.tmp')), 'the half-made file is gone');
    await again.settled();
    assert.equal(again.level(), 2);
    for (let i = 0; i < 2; i++) {
      const p = join(tmp.path, `t${i}`);
      await again.take(p);
      assert.ok(readFileSync(p).every((b) => b === 0));
    }
    await again.close();
  } finally {
    tmp.remove();
  }
});

test('chunk copyset state: a chunk taken but not recorded as applied is replayed without a second take; delete returns it; snapshots restore', async () => {
  const tmp = tempDir('tierfs-chunksm-');
  try {
    const pool = new ChunkFilePool(join(tmp.path, 'pool'), { chunkSize: CHUNK, target: 2 }).open();
    await pool.settled();
    const sm = new ChunkStateMachine(join(tmp.path, 'cs'), pool).load();
    const a = Buffer.alloc(8192, 0xaa);
    const b = Buffer.alloc(4096, 0xbb);
    await sm.apply([{ index: 2, term: 1, data: encodeWrite(7, 4096, a) }]);
    await sm.flush();
    // The next entry takes a file for chunk 8 and writes it; then "crash" before the applied
    // index reaches it (no flush): the taken file is the chunk, the record says index 2.
    await sm.apply([{ index: 3, term: 1, data: encodeWrite(8, 0, b) }]);
    await pool.settled();
    const level = pool.level();
    await sm.close();
    const reopened = new ChunkStateMachine(join(tmp.path, 'cs'), pool).load();
    assert.equal(await reopened.appliedIndex(), 2);
    await reopened.apply([{ index: 3, term: 1, data: encodeWrite(8, 0, b) }]);
    await pool.settled();
    assert.equal(pool.level(), level, 'the replay took no second file');
    assert.deepEqual(reopened.chunkIds(), [7, 8]);
    assert.deepEqual(await reopened.read(7, 4096, 8192), a);
    assert.deepEqual(await reopened.read(8, 0, 4096), b);
    assert.deepEqual(await reopened.read(9, 0, 4096), Buffer.alloc(4096), 'a chunk never written reads as zeros');

    // A snapshot restores the same chunks elsewhere (sparse: zero pieces are not shipped).
    const snap = await reopened.snapshot();
    const frames = await collect(snap.chunks);
    assert.ok(frames.reduce((n, f) => n + f.length, 0) < 3 * CHUNK, 'zero pieces skipped');
    const other = new ChunkStateMachine(join(tmp.path, 'cs2'), pool).load();
    await other.apply([{ index: 1, term: 1, data: encodeWrite(99, 0, b) }]);
    await other.restore(snap.index, snap.term, iter(frames));
    assert.deepEqual(other.chunkIds(), [7, 8]);
    assert.deepEqual(await other.read(7, 4096, 8192), a);
    assert.equal(await other.appliedIndex(), 3);

    // Delete returns the file to the pool (zeroed before reuse).
    await reopened.apply([{ index: 4, term: 1, data: encodeDelete(7) }]);
    assert.deepEqual(reopened.chunkIds(), [8]);
    await pool.settled();
    assert.equal(pool.dirtyCount(), 0);
    await reopened.close();
    await other.close();
    await pool.close();
  } finally {
    tmp.remove();
  }
});

test('batched writes (one entry, several chunks): applied together, overlapping pieces in log order, a delete in the batch in its place', async () => {
  const tmp = tempDir('tierfs-chunkwritev-');
  try {
    const pool = new ChunkFilePool(join(tmp.path, 'pool'), { chunkSize: CHUNK, target: 2 }).open();
    await pool.settled();
    const sm = new ChunkStateMachine(join(tmp.path, 'cs'), pool).load();
    const fill = (n: number, byte: number) => Buffer.alloc(n, byte);
    await sm.apply([
      { index: 2, term: 1, data: encodeWritev([{ chunkId: 1, offset: 0, data: fill(8192, 1) }, { chunkId: 2, offset: 4096, data: fill(4096, 2) }]) },
      // Overlaps the first piece: must land after it.
      { index: 3, term: 1, data: encodeWritev([{ chunkId: 1, offset: 4096, data: fill(4096, 3) }, { chunkId: 3, offset: 0, data: fill(4096, 4) }]) },
      { index: 4, term: 1, data: encodeDelete(3) },
      { index: 5, term: 1, data: encodeWrite(2, 0, fill(4096, 5)) },
    ]);
    assert.deepEqual(await sm.read(1, 0, 8192), Buffer.concat([fill(4096, 1), fill(4096, 3)]));
    assert.deepEqual(await sm.read(2, 0, 8192), Buffer.concat([fill(4096, 5), fill(4096, 2)]));
    assert.deepEqual(sm.chunkIds(), [1, 2], 'chunk 3 written then deleted in the same batch');
    assert.equal(await sm.appliedIndex(), 5);
    // A replay of the same entries (a crash before the applied index was recorded) gives the same bytes.
    await sm.apply([{ index: 3, term: 1, data: encodeWritev([{ chunkId: 1, offset: 4096, data: fill(4096, 3) }]) }]);
    assert.deepEqual(await sm.read(1, 4096, 4096), fill(4096, 3));
    const cut = encodeWritev([{ chunkId: 1, offset: 0, data: fill(4096, 7) }]).subarray(0, 100);
    await assert.rejects(sm.apply([{ index: 6, term: 1, data: cut }]), /cut short/);
    await sm.close();
    await pool.close();
  } finally {
    tmp.remove();
  }
});
