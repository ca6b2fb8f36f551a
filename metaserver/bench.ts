// `npm run bench -- metaserver`: 3 metaserver processes and an MDS (embedded store) on
// loopback, one RemoteMetaClient in this process. Cases create, get, rename, readdir and
// unlink over `count` entries of one directory, at concurrency 1 and 64. One JSON line per
// case on stdout: ops_per_s, p50_ms, p99_ms, and how many calls one Batch RPC carried.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MdsClient } from '../mds/client.js';
import { READY_PREFIX } from '../cli/ready.js';
import { RemoteMetaClient } from './client.js';
import { S_IFDIR, S_IFREG } from './meta-client.js';

export interface MetaserverBenchOptions {
  /** Entries per case (default 10,000). */
  count?: number;
  concurrencies?: number[];
}

const cliPath = join(dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'main.js');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Starts `tierfs <args>` and waits for its readiness line. */
function startDaemon(args: string[], procs: ChildProcess[]): Promise<Record<string, unknown>> {
  // TIERFS_BENCH_NODE_ARGS: node flags for the daemons (e.g. "--cpu-prof --cpu-prof-dir=DIR" to profile them).
  const nodeArgs = (process.env.TIERFS_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const p = spawn(process.execPath, [...nodeArgs, cliPath, ...args], {
    stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, TIERFS_LOG_LEVEL: process.env.TIERFS_LOG_LEVEL ?? 'warn' },
  });
  procs.push(p);
  return new Promise((resolve, reject) => {
    let buf = '';
    p.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      const line = buf.split('\n').find((l) => l.startsWith(READY_PREFIX));
      if (line) resolve(JSON.parse(line.slice(READY_PREFIX.length)) as Record<string, unknown>);
    });
    p.once('exit', (code) => reject(new Error(`tierfs ${args[0]} exited with ${code} before it was ready`)));
  });
}

async function until(what: string, fn: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`metaserver bench: timed out waiting for ${what}`);
}

/** Runs job(0..count-1) with `concurrency` workers; returns each job's latency in ms. */
async function run(count: number, concurrency: number, job: (i: number) => Promise<unknown>): Promise<{ secs: number; lat: number[] }> {
  const lat: number[] = new Array<number>(count);
  let next = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        const i = next++;
        const s = process.hrtime.bigint();
        await job(i);
        lat[i] = Number(process.hrtime.bigint() - s) / 1e6;
      }
    }),
  );
  return { secs: Number(process.hrtime.bigint() - t0) / 1e9, lat };
}

const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

function emit(name: string, concurrency: number, ops: number, r: { secs: number; lat: number[] }, client: RemoteMetaClient, batchesBefore: { batches: number; calls: number }, extra: object = {}): void {
  const sorted = [...r.lat].sort((a, b) => a - b);
  const q = (p: number) => round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0, 3);
  const b = client.rpc.batcher;
  const batches = b.batches - batchesBefore.batches;
  const line = {
    bench: 'metaserver', case: name, concurrency, ops, ops_per_s: Math.round(ops / r.secs), p50_ms: q(0.5), p99_ms: q(0.99),
    calls_per_batch: batches > 0 ? round((b.batchedCalls - batchesBefore.calls) / batches, 1) : 1, ...extra,
  };
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

export async function runMetaserverBench(opts: MetaserverBenchOptions = {}): Promise<void> {
  // The bench's daemons live on loopback in a private temp dir and take no cluster key.
  process.env.TIERFS_ALLOW_UNAUTHENTICATED = '1';
  const count = opts.count ?? 10_000;
  const concurrencies = opts.concurrencies ?? [1, 64];
  const dir = mkdtempSync(join(tmpdir(), 'tierfs-bench-meta-'));
  const procs: ChildProcess[] = [];
  let mds: MdsClient | null = null;
  let client: RemoteMetaClient | null = null;
  try {
    const mdsInfo = await startDaemon(
      ['mds', '--listen', `127.0.0.1:${await freePort()}`, '--data-dir', join(dir, 'mds'), '--set', 'scheduler.enabled=false', '--set', 's3.headBucket=false'],
      procs,
    );
    const mdsAddress = mdsInfo.address as string;
    for (let i = 0; i < 3; i++) {
      const cfg = join(dir, `ms${i}.json`);
      writeFileSync(cfg, JSON.stringify({
        dataDir: join(dir, `ms${i}`), listen: `127.0.0.1:${await freePort()}`, mds: [mdsAddress], zone: `z${i}`, hostName: `host${i}`,
        heartbeatIntervalMs: 300, deleteObjects: false,
      }));
      await startDaemon(['metaserver', '--config', cfg], procs);
    }
    mds = new MdsClient([mdsAddress]);
    const m = mds;
    await until('3 metaservers online', async () => (await m.clusterStatus()).metaservers.filter((s) => s.state === 'ONLINE').length === 3);
    const fs = await m.createFs({
      name: 'bench', fs_type: 's3', block_size: 1 << 20, chunk_size: 4 << 20,
      s3: { endpoint: 'http://127.0.0.1:1', bucket: 'unused', access_key: 'x', secret_key: 'x', region: 'us-east-1', key_prefix: '' },
    });
    client = new RemoteMetaClient({ fsId: fs.fs_id, mds: m });
    const c = client;
    await until('the root inode', async () => (await c.getInode(1)).ino === 1);
    const file = { mode: S_IFREG | 0o644, uid: 0, gid: 0, exclusive: true };
    const snap = () => ({ batches: c.rpc.batcher.batches, calls: c.rpc.batcher.batchedCalls });

    for (const conc of concurrencies) {
      const d = await c.createNode(1, `c${conc}`, { mode: S_IFDIR | 0o755, uid: 0, gid: 0, exclusive: true });
      const inos: number[] = new Array<number>(count);
      let b = snap();
      emit('create', conc, count, await run(count, conc, async (i) => (inos[i] = (await c.createNode(d.ino, `f${i}`, file)).ino)), c, b);
      b = snap();
      emit('get', conc, count, await run(count, conc, (i) => c.getInode(inos[(i * 7919) % count]!)), c, b);
      b = snap();
      emit('rename', conc, count, await run(count, conc, (i) => c.rename(d.ino, `f${i}`, d.ino, `r${i}`)), c, b);
      // readdir: whole listings of the directory, 1,000 names per call.
      const listings = conc === 1 ? 10 : conc * 2;
      let listed = 0;
      b = snap();
      const rd = await run(listings, conc, async () => {
        let last = '';
        for (;;) {
          const page = await c.listDentries(d.ino, last, 1000);
          listed += page.length;
          if (page.length < 1000) break;
          last = page[page.length - 1]!.name;
        }
      });
      if (listed !== listings * count) throw new Error(`readdir listed ${listed} names, expected ${listings * count}`);
      emit('readdir', conc, listings, rd, c, b, { entries: count, entries_per_s: Math.round(listed / rd.secs) });
      b = snap();
      emit('unlink', conc, count, await run(count, conc, (i) => c.unlink(d.ino, `r${i}`)), c, b);
    }
  } finally {
    await client?.close();
    mds?.close();
    // SIGTERM first, so a profiled daemon writes its profile; SIGKILL what lingers.
    await Promise.all(procs.map((p) => new Promise<void>((resolve) => {
      if (p.exitCode !== null || p.signalCode !== null) return resolve();
      const t = setTimeout(() => p.kill('SIGKILL'), 5000);
      p.once('exit', () => (clearTimeout(t), resolve()));
      p.kill('SIGTERM');
    })));
    rmSync(dir, { recursive: true, force: true });
  }
}
