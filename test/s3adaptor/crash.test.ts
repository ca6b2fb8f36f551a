// kill -9 of a process holding staged blocks while S3 is down: a restart of the disk cache
// uploads them, and the file reads back identical from S3 alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readdirSync } from 'node:fs';
import { DiskCache } from '../../diskcache/index.js';
import { S3Adaptor } from '../../s3adaptor/adaptor.js';
import { MemoryChunkIdAllocator, MemorySliceStore } from '../../s3adaptor/memory-slice-store.js';
import type { Slice } from '../../s3adaptor/types.js';
import { startS3 } from '../support/s3.js';
import { spawnProcess } from '../support/process.js';
import { tempDir } from '../support/tmp.js';
import { storeFor } from './fixture.js';
import { CRASH_BLOCK, CRASH_CHUNK, CRASH_INO, crashFileOps } from './crash-writer.js';

test('staged blocks survive kill -9 while S3 is down and upload after restart', async () => {
  const s3 = await startS3();
  const tmp = tempDir('tierfs-crash-');
  const store = storeFor(s3);
  try {
    await s3.stop();
    const helper = join(dirname(fileURLToPath(import.meta.url)), 'crash-writer.js');
    const cacheDir = join(tmp.path, 'cache');
    const child = await spawnProcess<{ slices: Array<[number, Slice[]]>; staged: number }>(process.execPath, [helper, s3.endpoint, s3.bucket, cacheDir, '11'], {
      readyTimeoutMs: 60_000,
    });
    assert.ok(child.info.staged > 0, 'the child holds staged blocks');
    await child.kill9();
    assert.equal(readdirSync(join(cacheDir, 'write')).filter((n) => !n.startsWith('.')).length, child.info.staged);

    await s3.restart();
    const disk = await DiskCache.open({ dir: cacheDir, capacityBytes: 256 * 2 ** 20, store });
    try {
      const st = disk.stats(); // uploads start during open: count both sides
      assert.equal(st.stagedBlocks + st.uploadedBlocks, child.info.staged, 'everything in write/ is queued again');
      await disk.flush();
      assert.equal(readdirSync(join(cacheDir, 'write')).length, 0);
      assert.equal(disk.stats().uploadedBlocks, child.info.staged);
    } finally {
      await disk.close();
    }

    // The slices were committed before the crash (the metaserver's copy); read from S3 only.
    const slices = new MemorySliceStore();
    await slices.appendSlices(CRASH_INO, new Map(child.info.slices));
    const reader = new S3Adaptor({ fsId: 3, chunkSize: CRASH_CHUNK, blockSize: CRASH_BLOCK, objectStore: store, sliceStore: slices, chunkIds: new MemoryChunkIdAllocator(1e6) });
    const expected = Buffer.alloc(1_200_000);
    let size = 0;
    for (const op of crashFileOps(11)) {
      op.data.copy(expected, op.offset);
      size = Math.max(size, op.offset + op.data.length);
    }
    const got = await reader.read(CRASH_INO, 0, size, size);
    assert.ok(got.equals(expected.subarray(0, size)), 'file contents identical after the crash');
    await reader.close();
  } finally {
    store.close();
    await s3.close();
    tmp.remove();
  }
});
