// ReadAhead over an in-memory volume whose fetches the test can hold back: sequential reads
// are answered from pieces fetched ahead, random reads are not, and a write dropping a piece
// (before or while it is fetched) sends the reader back to its own read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ReadAhead } from '../../blockclient/read-ahead.js';

const MiB = 1 << 20;

function volume(size: number) {
  const data = randomBytes(size);
  const fetches: number[] = [];
  let hold: Promise<void> | null = null;
  const ra = new ReadAhead({
    windowBytes: 4 * MiB, size,
    fetch: async (offset, length) => {
      fetches.push(offset);
      const snapshot = Buffer.from(data.subarray(offset, offset + length));
      if (hold) await hold;
      return snapshot;
    },
  });
  return { data, fetches, ra, holdFetches: (p: Promise<void> | null) => (hold = p) };
}

test('sequential reads are answered from pieces fetched ahead, in parallel; random reads are left to the caller', async () => {
  const { data, fetches, ra } = volume(16 * MiB);
  const buf = Buffer.alloc(MiB);
  assert.equal(await ra.read(0, buf), false, 'a first read is not sequential yet');
  assert.equal(await ra.read(MiB, buf), true);
  assert.ok(buf.equals(data.subarray(MiB, 2 * MiB)));
  assert.deepEqual(fetches, [1, 2, 3, 4, 5].map((i) => i * MiB), 'the window ahead was fetched at once');
  const part = Buffer.alloc(4096);
  for (let off = 2 * MiB; off < 2 * MiB + 8 * 4096; off += 4096) {
    assert.equal(await ra.read(off, part), true);
    assert.ok(part.equals(data.subarray(off, off + 4096)));
  }
  assert.equal(await ra.read(9 * MiB, buf), false, 'a jump ends the streak');
  assert.equal(ra.hits, 9);
});

test('a write drops the pieces it touches, also one still being fetched', async () => {
  const { data, ra, holdFetches } = volume(16 * MiB);
  const buf = Buffer.alloc(MiB);
  await ra.read(0, buf);
  await ra.read(MiB, buf); // pieces 1..5 fetched
  data.fill(7, 2 * MiB, 2 * MiB + 4096); // "write" into piece 2
  ra.invalidate(2 * MiB, 4096);
  assert.equal(await ra.read(2 * MiB, buf), true, 'refetched after the write');
  assert.equal(buf[0], 7);
  // Now a fetch that read the old bytes and answers after a write: not used.
  let release!: () => void;
  holdFetches(new Promise<void>((r) => (release = r)));
  const pending = ra.read(3 * MiB, buf); // piece 3 is cached already; pieces 6.. start, held
  assert.equal(await pending, true);
  const later = Buffer.alloc(MiB);
  const waiting = ra.read(4 * MiB, later).then(async () => ra.read(5 * MiB, later));
  await new Promise((r) => setImmediate(r));
  data.fill(9, 6 * MiB, 6 * MiB + 10);
  ra.invalidate(6 * MiB, 10);
  const six = ra.read(6 * MiB, later);
  release();
  holdFetches(null);
  await waiting;
  assert.equal(await six, true, 'piece 6 was fetched again after the write');
  assert.equal(later[0], 9);
});
