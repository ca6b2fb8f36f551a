// `tierfs bench-suite fuse`: the server's own cost, against the in-memory filesystem.
// Callers are separate processes (one thread each, blocking syscalls), as an application
// would be; the server runs in this process. Prints one JSON line per case.
//   getattr: stat(2) of one file, attribute timeout 0, so every call is a GETATTR;
//   ls-l: `ls -l` of 10,000 entries, cold kernel caches, readdirplus 'auto' and 'always'
//   (ls -l also asks two xattrs per entry, security.selinux and system.posix_acl_access: the
//   kernel passes both to the filesystem, so GETXATTR dominates the request count);
//   read-4k-direct-random: 4 KiB O_DIRECT random reads of a 64 MiB file, as the peers harness
//   measures them: fio, one job, libaio at iodepth 1 and 8 (needs FUSE_ASYNC_DIO to go past
//   QD1). Without fio: 1 and 8 processes of synchronous preads.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mountFuse, type FuseMountOptions } from './index.js';
import { MemFs } from './mem-fs.js';

export interface FuseBenchOptions {
  /** Seconds per case (default 3). */
  seconds?: number;
}

const STAT_LOOP = `
const fs = require('fs');
const [path, ms] = [process.argv[1], Number(process.argv[2])];
let n = 0; const t0 = Date.now(); const end = t0 + ms;
while (Date.now() < end) { for (let i = 0; i < 100; i++) fs.statSync(path); n += 100; }
console.log(JSON.stringify({ n, ms: Date.now() - t0 }));
`;

const READ_LOOP = `
const fs = require('fs');
const [path, ms, size] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_DIRECT);
const buf = Buffer.alloc(4096);
const blocks = size / 4096;
let n = 0; const t0 = Date.now(); const end = t0 + ms;
while (Date.now() < end) {
  for (let i = 0; i < 50; i++) {
    if (fs.readSync(fd, buf, 0, 4096, Math.floor(Math.random() * blocks) * 4096) !== 4096) throw new Error('short read');
  }
  n += 50;
}
console.log(JSON.stringify({ n, ms: Date.now() - t0 }));
`;

function child(script: string, args: string[]): Promise<{ n: number; ms: number }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['-e', script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.setEncoding('utf8');
    c.stdout.on('data', (d: string) => (out += d));
    c.on('error', reject);
    c.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as { n: number; ms: number }) : reject(new Error(`bench caller exited ${code}`))));
  });
}

function hasFio(): boolean {
  return spawnSync('fio', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** fio randread, one job, libaio O_DIRECT at iodepth depth: IOPS. */
function fioRandread(path: string, size: number, depth: number, seconds: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const args = [
      '--name=fuse-bench', `--filename=${path}`, '--rw=randread', '--bs=4k', '--direct=1', '--ioengine=libaio',
      `--iodepth=${depth}`, '--numjobs=1', `--size=${size}`, '--time_based', `--runtime=${seconds}`, '--output-format=json',
    ];
    const c = spawn('fio', args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.setEncoding('utf8');
    c.stdout.on('data', (d: string) => (out += d));
    c.on('error', reject);
    c.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`fio exited ${code}`));
      const r = JSON.parse(out) as { jobs: { read: { iops: number } }[] };
      resolve(r.jobs[0]!.read.iops);
    });
  });
}

async function callers(n: number, script: string, args: string[]): Promise<number> {
  const results = await Promise.all(Array.from({ length: n }, () => child(script, args)));
  return results.reduce((sum, r) => sum + (r.n * 1000) / r.ms, 0);
}

function lsLong(dir: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const c = spawn('ls', ['-l', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    let lines = 0;
    c.stdout.on('data', (d: Buffer) => {
      for (const b of d) if (b === 10) lines++;
    });
    c.on('error', reject);
    c.on('exit', (code) => (code === 0 ? resolve(lines - 1) : reject(new Error(`ls exited ${code}`))));
  });
}

/** ls -l of a fresh directory of n entries on a fresh mount (nothing cached in the kernel). */
async function benchLs(n: number, readdirplus: FuseMountOptions['readdirplus']): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fuse-bench-ls-'));
  const fs = new MemFs({ entryTimeoutMs: 3_600_000, attrTimeoutMs: 3_600_000 });
  const d = fs.addDir(1, 'many');
  for (let i = 0; i < n; i++) fs.addFile(d, `file-${i}`, 'x');
  const session = await mountFuse(dir, fs, { fsname: 'memfs:bench', subtype: 'memfs', readdirplus });
  try {
    const t0 = process.hrtime.bigint();
    const listed = await lsLong(join(dir, 'many'));
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    if (listed !== n) throw new Error(`ls -l listed ${listed} of ${n}`);
    const ops = session.stats.ops;
    console.log(
      JSON.stringify({
        suite: 'fuse', case: 'ls-l', entries: n, readdirplus, entriesPerSec: Math.round(n / secs),
        requests: { READDIRPLUS: ops.READDIRPLUS ?? 0, READDIR: ops.READDIR ?? 0, LOOKUP: ops.LOOKUP ?? 0, GETXATTR: ops.GETXATTR ?? 0 },
      }),
    );
  } finally {
    await session.unmount({ lazy: true });
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runFuseBench(opts: FuseBenchOptions = {}): Promise<void> {
  for (const mode of ['auto', 'always'] as const) await benchLs(10_000, mode);
  const ms = Math.round((opts.seconds ?? 3) * 1000);
  const dir = mkdtempSync(join(tmpdir(), 'fuse-bench-'));
  const fs = new MemFs({ entryTimeoutMs: 3_600_000, attrTimeoutMs: 0 });
  const SIZE = 64 << 20;
  fs.addFile(1, 'stat-me', 'x');
  fs.addFile(1, 'data', Buffer.alloc(SIZE, 7));
  const session = await mountFuse(dir, fs, { fsname: 'memfs:bench', subtype: 'memfs' });
  try {
    for (const n of [1, 8]) {
      session.resetMaxInFlight();
      const opsPerSec = await callers(n, STAT_LOOP, [join(dir, 'stat-me'), String(ms)]);
      console.log(JSON.stringify({ suite: 'fuse', case: 'getattr', attrTimeoutMs: 0, callers: n, opsPerSec: Math.round(opsPerSec), maxInFlight: session.stats.maxInFlight }));
    }
    const fio = hasFio();
    for (const n of [1, 8]) {
      session.resetMaxInFlight();
      const iops = fio
        ? await fioRandread(join(dir, 'data'), SIZE, n, ms / 1000)
        : await callers(n, READ_LOOP, [join(dir, 'data'), String(ms), String(SIZE)]);
      console.log(
        JSON.stringify({
          suite: 'fuse',
          case: 'read-4k-direct-random',
          queueDepth: n,
          engine: fio ? 'fio libaio, 1 job' : `${n} processes, pread`,
          iops: Math.round(iops),
          mbPerSec: Math.round((iops * 4096) / 1e6),
          maxInFlight: session.stats.maxInFlight,
        }),
      );
    }
  } finally {
    await session.unmount({ lazy: true });
    rmSync(dir, { recursive: true, force: true });
  }
}
