// `tierfs bench-s3adaptor`: sequential write/read and 4 KiB random reads through the adaptor
// (staged writes, warm reads from the disk cache, cold reads from S3), beside raw S3 PUT/GET
// and local-disk throughput measured in the same run. One JSON line per case on stdout.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import PQueue from 'p-queue';
import { DiskCache } from '../diskcache/index.js';
import { S3Adaptor } from './adaptor.js';
import { EMBEDDED_ACCESS_KEY, EMBEDDED_SECRET_KEY } from './embedded-server.js';
import { MemoryChunkIdAllocator, MemorySliceStore } from './memory-slice-store.js';
import { createObjectStore, type ObjectStore } from './object-store.js';

export interface S3adaptorBenchOptions {
  sizeMiB?: number;
  /** An existing S3 endpoint (MinIO...); default: an embedded s3rver child process. */
  endpoint?: string;
  bucket?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Where the disk cache and the local-disk baseline file live (default: the OS temp dir). */
  dir?: string;
}

const MiB = 2 ** 20;
const BLOCK = 4 * MiB;
const CHUNK = 64 * MiB;
const IO = MiB; // request size of sequential cases (a FUSE mount with big writes sends up to 1 MiB)

function emit(name: string, mibPerS: number, baseline: string, baselineMiBPerS: number): void {
  const line = { bench: 's3adaptor', case: name, mib_per_s: round(mibPerS), baseline, baseline_mib_per_s: round(baselineMiBPerS), ratio: round(mibPerS / baselineMiBPerS, 3) };
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

export async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

export function pattern(size: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i += 4) b.writeUInt32LE((i * 2654435761 + seed) >>> 0, i);
  return b;
}

/** Starts `tierfs s3server` as a child process so S3 has its own event loop. */
async function startS3Child(dir: string, bucket: string): Promise<{ endpoint: string; stop(): void }> {
  const d = await startTierfsChild<{ endpoint: string }>(['s3server', '--dir', dir, '--port', '0', '--bucket', bucket]);
  return { endpoint: d.info.endpoint, stop: d.stop };
}

/**
 * Starts a `tierfs` daemon as a child process; resolves with its TIERFS_READY info. Stopped on
 * SIGINT/SIGTERM. `prefix` runs it through another command (`ip netns exec NS`, which execs it).
 */
export async function startTierfsChild<I>(args: string[], prefix: string[] = []): Promise<{ info: I; stop(): void }> {
  const cli = fileURLToPath(new URL('../cli/main.js', import.meta.url));
  const argv = [...prefix, process.execPath, cli, ...args];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'ignore'] });
  const info = await new Promise<I>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /TIERFS_READY (.*)\n/.exec(buf);
      if (m) resolve(JSON.parse(m[1]!) as I);
    });
    child.once('exit', (code) => reject(new Error(`tierfs ${args[0]} exited with ${code}`)));
  });
  // Do not leave the daemons behind when the bench is interrupted.
  children.add(child);
  if (children.size === 1) {
    process.once('SIGINT', killChildren);
    process.once('SIGTERM', killChildren);
  }
  return {
    info,
    stop: () => {
      children.delete(child);
      if (children.size === 0) {
        process.off('SIGINT', killChildren);
        process.off('SIGTERM', killChildren);
      }
      child.kill('SIGTERM');
    },
  };
}

const children = new Set<ReturnType<typeof spawn>>();
function killChildren(): void {
  for (const c of children) c.kill('SIGTERM');
  process.exit(130);
}

/**
 * Local-disk baselines on one file, each measured right before the adaptor case it is the
 * baseline of, so both see the same machine (page cache, other load) in the same run.
 */
class LocalDisk {
  private constructor(private readonly fh: FileHandle, private readonly size: number) {}

  static async create(path: string, size: number): Promise<LocalDisk> {
    return new LocalDisk(await open(path, 'w+'), size);
  }

  async write(chunk: Buffer): Promise<number> {
    const secs = await timed(async () => {
      for (let off = 0; off < this.size; off += chunk.length) await this.fh.write(chunk, 0, chunk.length, off);
      await this.fh.sync();
    });
    return this.size / MiB / secs;
  }

  async read(): Promise<number> {
    const buf = Buffer.allocUnsafe(IO);
    const secs = await timed(async () => {
      for (let off = 0; off < this.size; off += buf.length) await this.fh.read(buf, 0, buf.length, off);
    });
    return this.size / MiB / secs;
  }

  async rand4k(ops: number): Promise<number> {
    const small = Buffer.allocUnsafe(4096);
    const secs = await timed(async () => {
      for (let i = 0; i < ops; i++) await this.fh.read(small, 0, 4096, Math.floor(Math.random() * (this.size / 4096)) * 4096);
    });
    return (ops * 4096) / MiB / secs;
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

/** Rounds of each read case; baseline and adaptor alternate, and the best of each counts. */
const READ_ROUNDS = 3;

/**
 * Runs baseline and adaptor in turns and keeps the best rate of each: reads take a second or
 * less, so one burst of other load on a 2-core machine would otherwise decide the ratio.
 */
async function bestOf(rounds: number, baseline: () => Promise<number>, ours: () => Promise<number>): Promise<{ baseline: number; ours: number }> {
  let best = { baseline: 0, ours: 0 };
  for (let i = 0; i < rounds; i++) {
    best = { baseline: Math.max(best.baseline, await baseline()), ours: Math.max(best.ours, await ours()) };
  }
  return best;
}

async function rawS3(store: ObjectStore, size: number, block: Buffer, concurrency: number): Promise<{ put: number; get: number }> {
  const n = size / block.length;
  const q = new PQueue({ concurrency });
  const put = await timed(() => Promise.all(Array.from({ length: n }, (_, i) => q.add(() => store.put(`raw/${i}`, block)))).then(() => {}));
  const get = await timed(() => Promise.all(Array.from({ length: n }, (_, i) => q.add(() => store.get(`raw/${i}`)))).then(() => {}));
  await store.deleteMany(Array.from({ length: n }, (_, i) => `raw/${i}`));
  return { put: size / MiB / put, get: size / MiB / get };
}

/** Reads into one reused buffer, as a FUSE mount does (the kernel hands us the reply buffer). */
export async function seqRead(adaptor: S3Adaptor, ino: number, size: number, expect: Buffer): Promise<number> {
  const buf = Buffer.allocUnsafe(IO);
  const secs = await timed(async () => {
    for (let off = 0; off < size; off += IO) {
      const n = await adaptor.readInto(ino, off, buf, size);
      if (off % (64 * MiB) === 0 && !buf.subarray(0, n).equals(expect.subarray(0, n))) throw new Error(`bench read at ${off}: wrong data`);
    }
  });
  return size / MiB / secs;
}

export async function runS3adaptorBench(opts: S3adaptorBenchOptions = {}): Promise<void> {
  const size = Math.max(8, Math.floor(opts.sizeMiB ?? 1024)) * MiB;
  const work = mkdtempSync(join(opts.dir ?? tmpdir(), 'tierfs-bench-s3a-'));
  const bucket = opts.bucket ?? 'tierfs-bench';
  const s3 = opts.endpoint ? null : await startS3Child(join(work, 's3'), bucket);
  const store = createObjectStore({
    endpoint: opts.endpoint ?? s3!.endpoint,
    bucket,
    accessKeyId: opts.accessKeyId ?? EMBEDDED_ACCESS_KEY,
    secretAccessKey: opts.secretAccessKey ?? EMBEDDED_SECRET_KEY,
    keyPrefix: `bench-${process.pid}/`,
    concurrency: 16,
  });
  const block = pattern(IO, 7);
  try {
    await store.ensureBucket();
    // S3 first: its server writes to the same disk, and the local write right after it then
    // meets the same writeback backlog the staged write meets.
    const raw = await rawS3(store, size, pattern(BLOCK, 5), 8);
    const local = await LocalDisk.create(join(work, 'local.bin'), size);
    const disk = { write: await local.write(pattern(IO, 3)) };
    emit('raw-s3-put', raw.put, 'local-disk', disk.write);

    const slices = new MemorySliceStore();
    const ids = new MemoryChunkIdAllocator();
    const cache = await DiskCache.open({ dir: join(work, 'cache'), capacityBytes: 4 * size + 256 * MiB, store, uploadConcurrency: 8 });
    const base = { fsId: 1, chunkSize: CHUNK, blockSize: BLOCK, objectStore: store, sliceStore: slices, chunkIds: ids };
    const ino = 2;
    const writer = new S3Adaptor({ ...base, diskCache: cache, writeback: true, memBudgetBytes: 512 * MiB });
    const writeFile = async (target: number) => {
      for (let off = 0; off < size; off += IO) await writer.write(target, off, block);
      await writer.flush(target);
    };
    // The embedded S3 server writes its copy to the same disk, so uploads running during the
    // staged write would halve what the disk gives the cache. Measure staging alone, then
    // (informational) staging while uploads run, as they would to a remote S3.
    cache.pauseUploads();
    const wsecs = await timed(() => writeFile(ino));
    emit('seq-write-staged', size / MiB / wsecs, 'local-disk', disk.write);
    const usecs = await timed(() => writer.waitUploaded());
    emit('upload-drain', size / MiB / usecs, 'raw-s3-put', raw.put);
    const csecs = await timed(() => writeFile(ino + 1));
    emit('seq-write-staged-uploading', size / MiB / csecs, 'local-disk', disk.write);
    await writer.waitUploaded();
    await writer.close();

    const warm = new S3Adaptor({ ...base, diskCache: cache });
    const warmRead = await bestOf(READ_ROUNDS, () => local.read(), () => seqRead(warm, ino, size, block));
    emit('seq-read-warm', warmRead.ours, 'local-disk', warmRead.baseline);
    const ops = 20_000;
    const small = Buffer.allocUnsafe(4096);
    const randRead = await bestOf(
      READ_ROUNDS,
      () => local.rand4k(ops),
      async () => {
        const secs = await timed(async () => {
          for (let i = 0; i < ops; i++) await warm.readInto(ino, Math.floor(Math.random() * (size / 4096)) * 4096, small, size);
        });
        return (ops * 4096) / MiB / secs;
      },
    );
    emit('rand-read-4k-warm', randRead.ours, 'local-disk', randRead.baseline);
    await warm.close();

    const cold = new S3Adaptor({ ...base, diskCache: null });
    emit('seq-read-cold', await seqRead(cold, ino, size, block), 'raw-s3-get', raw.get);
    await cold.close();
    // Cold again, as a mount reads: through an empty disk cache that keeps what it fetched.
    await cache.evictAll();
    const coldCached = new S3Adaptor({ ...base, diskCache: cache });
    emit('seq-read-cold-disk-cache', await seqRead(coldCached, ino, size, block), 'raw-s3-get', raw.get);
    await coldCached.close();
    await cache.close();
    await local.close();
    await cold.deleteObjects(ino, await slices.getSlices(ino));
    await cold.deleteObjects(ino + 1, await slices.getSlices(ino + 1));
  } finally {
    store.close();
    s3?.stop();
    rmSync(work, { recursive: true, force: true });
  }
}
