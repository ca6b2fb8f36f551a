// Random writes, reads, truncates, flushes and cache drops through the adaptor against a
// in-memory object store, compared byte for byte with an in-memory reference file, over many seeds.
// Small chunks and blocks (64 KiB / 16 KiB) put most operations across boundaries.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { S3Adaptor } from '../../s3adaptor/adaptor.js';
import { MemoryChunkIdAllocator, MemorySliceStore } from '../../s3adaptor/memory-slice-store.js';
import type { ObjectStore } from '../../s3adaptor/object-store.js';
import { DiskCache } from '../../diskcache/index.js';
import { MemoryObjectStore } from '../../s3adaptor/memory-object-store.js';
import { tempDir } from '../support/tmp.js';
import { rng } from './rng.js';

const CHUNK = 64 * 1024;
const BLOCK = 16 * 1024;
const MAX_FILE = 4 * CHUNK + 1000;
const OPS = 150;

let store: ObjectStore;
const tmp = tempDir('tierfs-model-');

before(() => {
  store = new MemoryObjectStore();
});
after(() => {
  tmp.remove();
});

/** A file as plain bytes: the semantics the adaptor must reproduce. */
class ReferenceFile {
  data = Buffer.alloc(0);
  write(off: number, buf: Buffer): void {
    if (off + buf.length > this.data.length) this.truncate(off + buf.length);
    buf.copy(this.data, off);
  }
  truncate(size: number): void {
    const next = Buffer.alloc(size);
    this.data.copy(next, 0, 0, Math.min(size, this.data.length));
    this.data = next;
  }
  read(off: number, len: number): Buffer {
    return this.data.subarray(Math.min(off, this.data.length), Math.min(off + len, this.data.length));
  }
}

async function readIntoGarbage(adaptor: S3Adaptor, ino: number, off: number, len: number, size: number): Promise<Buffer> {
  const target = Buffer.alloc(len, 0xaa);
  const n = await adaptor.readInto(ino, off, target, size);
  return target.subarray(0, n);
}

let runs = 0;
async function runSeed(seed: number, withDisk: boolean): Promise<void> {
  const run = runs++;
  const r = rng(seed);
  const slices = new MemorySliceStore();
  const disk = withDisk ? await DiskCache.open({ dir: join(tmp.path, `cache-${run}`), capacityBytes: 64 * 2 ** 20, store, fsync: false }) : null;
  const adaptor = new S3Adaptor({
    fsId: 1,
    chunkSize: CHUNK,
    blockSize: BLOCK,
    objectStore: store,
    sliceStore: slices,
    chunkIds: new MemoryChunkIdAllocator(),
    diskCache: disk,
    memBudgetBytes: 12 * BLOCK, // small: forces pressure flushes and writer waits
    readCacheBytes: 4 * BLOCK,
    writeback: r.next() < 0.5,
    compactThreshold: Number(process.env.MODEL_COMPACT ?? 5),
    chunkIdBatch: 7,
  });
  const ino = 1000 + run; // fresh keys for every run, even of the same seed
  const ref = new ReferenceFile();
  const log: string[] = [];
  try {
    for (let op = 0; op < OPS; op++) {
      const p = r.next();
      if (p < 0.4) {
        const off = r.int(MAX_FILE);
        const len = 1 + (r.next() < 0.2 ? r.int(2 * CHUNK) : r.int(3 * BLOCK));
        const data = r.bytes(len);
        log.push(`write ${off}+${len}`);
        await adaptor.write(ino, off, data);
        ref.write(off, data);
      } else if (p < 0.7) {
        const off = r.int(ref.data.length + BLOCK);
        const len = 1 + r.int(2 * CHUNK);
        // Half the reads go into a buffer full of garbage, as the FUSE reply buffer may be:
        // holes and zero slices must be written as zeros, not skipped.
        const into = r.next() < 0.5;
        log.push(`read${into ? 'Into' : ''} ${off}+${len}`);
        const got = into ? await readIntoGarbage(adaptor, ino, off, len, ref.data.length) : await adaptor.read(ino, off, len, ref.data.length);
        const want = ref.read(off, len);
        if (!got.equals(want)) {
          let i = 0;
          while (i < want.length && got[i] === want[i]) i++;
          const dump = process.env.MODEL_DEBUG ? JSON.stringify([...(await slices.getSlices(ino))]) + ` got=${got.subarray(i, i + 8).toString('hex')} want=${want.subarray(i, i + 8).toString('hex')} stats=${JSON.stringify(adaptor.stats().read)}` : '';
          assert.fail(`${dump}\nseed ${seed}: read ${off}+${len} (size ${ref.data.length}) differs at +${i} (file offset ${off + i}): got ${got.length} bytes\n${log.slice(-15).join('\n')}`);
        }
      } else if (p < 0.8) {
        const size = r.int(MAX_FILE);
        log.push(`truncate ${ref.data.length} -> ${size}`);
        await adaptor.truncate(ino, ref.data.length, size);
        ref.truncate(size);
      } else if (p < 0.9) {
        log.push('flush');
        await (r.next() < 0.5 ? adaptor.flush(ino) : adaptor.fsync(ino));
      } else {
        log.push('invalidate');
        adaptor.invalidate(ino);
      }
    }
    // Finally everything must read back from storage alone: a new adaptor without caches.
    await adaptor.flush(ino);
    await disk?.flush();
    const fresh = new S3Adaptor({ fsId: 1, chunkSize: CHUNK, blockSize: BLOCK, objectStore: store, sliceStore: slices, chunkIds: new MemoryChunkIdAllocator(1e9) });
    const all = await fresh.read(ino, 0, ref.data.length, ref.data.length);
    assert.ok(all.equals(ref.data), `seed ${seed}: final contents differ from the reference`);
    await fresh.close();
  } finally {
    await adaptor.close();
    await disk?.close();
  }
}

export const SEEDS = (process.env.MODEL_SEEDS ?? "").split(",").filter(Boolean).map(Number);
test('random writes/reads/truncates match the reference file (15 seeds x 150 ops)', async () => {
  const seeds = SEEDS.length ? SEEDS : Array.from({ length: 15 }, (_, i) => i + 1);
  for (const seed of seeds) {
    const t0 = Date.now();
    await runSeed(seed, seed % 3 !== 0);
    if (process.env.MODEL_DEBUG) console.log(`seed ${seed}: ${Date.now() - t0} ms`);
  }
});
