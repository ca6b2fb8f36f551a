// ReplyPool: READ reply buffers come back for reuse by size, within both caps.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReplyPool } from '../../fuse/reply-pool.js';

test('a given-back buffer is taken again for the same size, never for another', () => {
  const pool = new ReplyPool(1 << 20, 4);
  const a = pool.take(4112);
  pool.give(a);
  assert.equal(pool.bytes, 4112);
  assert.notEqual(pool.take(8208), a, 'another size gets a new buffer');
  assert.equal(pool.take(4112), a, 'the same size gets the pooled one');
  assert.equal(pool.bytes, 0);
  assert.notEqual(pool.take(4112), a, 'taken once, not twice');
});

test('idle buffers are bounded per size and in bytes', () => {
  const pool = new ReplyPool(3 * 4112, 2);
  const bufs = [pool.take(4112), pool.take(4112), pool.take(4112)];
  for (const b of bufs) pool.give(b);
  assert.equal(pool.bytes, 2 * 4112, 'at most 2 per size');
  pool.give(pool.take(100));
  pool.give(Buffer.alloc(4112 + 1));
  assert.equal(pool.bytes, 2 * 4112 + 100, 'a buffer past the byte cap is dropped');
});
