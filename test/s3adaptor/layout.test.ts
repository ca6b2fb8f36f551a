import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blockKey, parseBlockKey } from '../../s3adaptor/keys.js';
import { newestFirst, objectPieces, resolveRange, shadowedSlices, sliceObjects } from '../../s3adaptor/layout.js';
import { ChunkIdBatch } from '../../s3adaptor/chunk-ids.js';
import { MemoryChunkIdAllocator } from '../../s3adaptor/memory-slice-store.js';
import type { Slice } from '../../s3adaptor/types.js';

const slice = (chunkId: number, offset: number, len: number, zero = false): Slice => ({ chunkId, compaction: 0, offset, len, size: zero ? 0 : len, zero });

test('block keys round-trip, are short, have no slash, and reject foreign names', () => {
  const key = blockKey(7, 123456, 9_000_000_001, 15, 2);
  assert.match(key, /^[0-9a-f]{2}_7_123456_9000000001_15_2$/);
  assert.ok(key.length < 40);
  assert.deepEqual(parseBlockKey(key), { fsId: 7, ino: 123456, chunkId: 9_000_000_001, blockIndex: 15, compaction: 2 });
  assert.equal(parseBlockKey('zz_7_1_1_1_1'), null);
  assert.equal(parseBlockKey(key.replace(/^../, key.startsWith('00') ? '01' : '00')), null, 'wrong hash prefix');
  assert.equal(parseBlockKey('notes.txt'), null);
  const prefixes = new Set(Array.from({ length: 200 }, (_, i) => blockKey(1, 5, 100 + i, 0, 0).slice(0, 2)));
  assert.ok(prefixes.size > 50, 'hash prefixes spread');
});

test('resolveRange gives each byte to the newest layer covering it, holes to null', () => {
  const layers = newestFirst([slice(1, 0, 100), slice(3, 20, 10), slice(2, 50, 100, true)]).map((s) => ({ start: s.offset, end: s.offset + s.len, source: s.chunkId }));
  assert.deepEqual(resolveRange(0, 200, layers), [
    { start: 0, end: 20, source: 1 },
    { start: 20, end: 30, source: 3 },
    { start: 30, end: 50, source: 1 },
    { start: 50, end: 150, source: 2 },
    { start: 150, end: 200, source: null },
  ]);
  assert.deepEqual(resolveRange(25, 25, layers), []);
});

test('slice objects follow the chunk block grid; pieces map chunk offsets into objects', () => {
  const s = slice(5, 10, 30);
  assert.deepEqual(sliceObjects(s, 16), [
    { blockIndex: 0, chunkStart: 10, size: 6 },
    { blockIndex: 1, chunkStart: 16, size: 16 },
    { blockIndex: 2, chunkStart: 32, size: 8 },
  ]);
  assert.deepEqual(sliceObjects(slice(6, 0, 64, true), 16), []);
  assert.deepEqual(objectPieces(s, 12, 34, 16), [
    { blockIndex: 0, objectSize: 6, from: 2, chunkPos: 12, len: 4 },
    { blockIndex: 1, objectSize: 16, from: 0, chunkPos: 16, len: 16 },
    { blockIndex: 2, objectSize: 8, from: 0, chunkPos: 32, len: 2 },
  ]);
});

test('chunk id reservations are served in call order across batch refills', async () => {
  const alloc = new MemoryChunkIdAllocator(100);
  const batch = new ChunkIdBatch(alloc, 3);
  const a = batch.reserve(2);
  const b = batch.reserve(4);
  const c = batch.reserve(1);
  assert.deepEqual(await a, [100, 101]);
  const bIds = await b;
  const cIds = await c;
  assert.ok(bIds.every((id, i) => i === 0 || id > bIds[i - 1]!));
  assert.ok(cIds[0]! > bIds.at(-1)!);
  assert.ok(bIds[0]! > 101);
  assert.equal(alloc.calls, 3);
});

test('shadowedSlices: slices every byte of which a newer slice covers, zero slices included', () => {
  const s = (chunkId: number, offset: number, len: number, zero = false, compaction = 0): Slice => ({ chunkId, compaction, offset, len, size: zero ? 0 : len, zero });
  const old = s(1, 0, 100);
  const partly = s(2, 50, 100);
  const mask = s(3, 0, 120, true);
  const fresh = s(4, 0, 120);
  assert.deepEqual(shadowedSlices([old]), []);
  assert.deepEqual(shadowedSlices([old, partly]), [], 'each still serves some bytes');
  assert.deepEqual(shadowedSlices([old, partly, mask]), [old], 'partly still serves 120..150');
  assert.deepEqual(shadowedSlices([old, partly, mask, fresh]), [old, mask], 'a rewrite shadows the truncate mask too');
  const compacted = s(2, 0, 150, false, 1);
  assert.deepEqual(shadowedSlices([partly, compacted]), [partly], 'same chunk id: the higher compaction is newer');
});
