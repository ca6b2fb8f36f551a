import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chunkDataBytes } from '../../metaserver/slice-bytes.js';
import { resolveRange, newestFirst } from '../../s3adaptor/layout.js';

const s = (chunkId: number, offset: number, len: number, zero = false) => ({ chunkId, compaction: 0, offset, len, size: len, zero });

test('chunkDataBytes: newer slices cover older ones, zero slices are holes, list order does not matter', () => {
  assert.equal(chunkDataBytes([]), 0);
  assert.equal(chunkDataBytes([s(1, 0, 10), s(2, 10, 10)]), 20, 'touching');
  assert.equal(chunkDataBytes([s(2, 5, 10), s(1, 0, 10)]), 15, 'overlapping, newer listed first');
  assert.equal(chunkDataBytes([s(1, 0, 100), s(2, 10, 10, true), s(3, 15, 2)]), 92, 'a hole with newer data inside it');
  assert.equal(chunkDataBytes([s(1, 0, 10, true), s(2, 100, 10, true)]), 0);
});

test('chunkDataBytes agrees with the read path overlay on random slice lists', () => {
  let seed = 7;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  for (let round = 0; round < 500; round++) {
    const list = Array.from({ length: rnd(12) }, (_, i) => s(rnd(20) + 1, rnd(1000), rnd(300), rnd(4) === 0)).map((x, i) => ({ ...x, chunkId: x.chunkId * 100 + i }));
    const layers = newestFirst(list).map((x) => ({ start: x.offset, end: x.offset + x.len, source: x.zero ? 'zero' : 'data' }));
    const expected = resolveRange(0, 2000, layers).filter((g) => g.source === 'data').reduce((n, g) => n + g.end - g.start, 0);
    assert.equal(chunkDataBytes(list), expected, JSON.stringify(list));
  }
});
