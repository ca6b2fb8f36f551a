// Child process for the kill -9 test: writes a seeded file through the adaptor with S3
// down, fsyncs (blocks staged, slices committed), reports the slices and waits to be killed.
import { DiskCache } from '../../diskcache/index.js';
import { S3Adaptor } from '../../s3adaptor/adaptor.js';
import { MemoryChunkIdAllocator, MemorySliceStore } from '../../s3adaptor/memory-slice-store.js';
import { createObjectStore } from '../../s3adaptor/object-store.js';
import { announceReady } from '../../cli/ready.js';
import { rng } from './rng.js';

export const CRASH_CHUNK = 256 * 1024;
export const CRASH_BLOCK = 64 * 1024;
export const CRASH_INO = 42;

/** The file the child writes: deterministic from the seed, so the parent can check it. */
export function crashFileOps(seed: number): Array<{ offset: number; data: Buffer }> {
  const r = rng(seed);
  const ops: Array<{ offset: number; data: Buffer }> = [];
  for (let i = 0; i < 40; i++) ops.push({ offset: r.int(1_000_000), data: r.bytes(1 + r.int(100_000)) });
  return ops;
}

async function main(): Promise<void> {
  const [endpoint, bucket, dir, seed] = process.argv.slice(2) as [string, string, string, string];
  const store = createObjectStore({ endpoint, bucket, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', maxAttempts: 1, retryBaseMs: 10 });
  const disk = await DiskCache.open({ dir, capacityBytes: 256 * 2 ** 20, store, retryBaseMs: 50, retryMaxMs: 200 });
  const slices = new MemorySliceStore();
  const adaptor = new S3Adaptor({ fsId: 3, chunkSize: CRASH_CHUNK, blockSize: CRASH_BLOCK, objectStore: store, sliceStore: slices, chunkIds: new MemoryChunkIdAllocator(), diskCache: disk, writeback: true });
  for (const op of crashFileOps(Number(seed))) await adaptor.write(CRASH_INO, op.offset, op.data);
  await adaptor.fsync(CRASH_INO);
  const committed = [...(await slices.getSlices(CRASH_INO))];
  announceReady({ slices: committed, staged: disk.stats().stagedBlocks });
  setInterval(() => {}, 1 << 30); // hold the staged blocks until SIGKILL
}

if (process.argv[1]?.endsWith('crash-writer.js')) void main();
