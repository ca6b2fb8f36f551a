// `npm run bench -- namespace` (root: it mounts): names through a real FUSE mount of
// `tierfs up` (MDS, 3 metaservers, the embedded S3 server). Per recycle-bin setting
// (`--trash-days 1` and `0`) and per mount (the default, and a second mount of the same
// filesystem with --async-unlink): create, rename and unlink of `count` empty files in one
// directory from one thread, then `rm -rf` of `rmCount` files (made by 10 threads in 10
// subdirectories, reported as `create_10dirs`). One JSON line per case: ops_per_s, and per
// operation the kernel requests the mount answered and the metadata calls it made (from the
// mount's `stats`), which is where a regression in the per-operation path shows first.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { adminRequest } from './admin.js';
import type { LoopJob, LoopResult } from './bench-worker.js';
import { isMountedAt, readMountRecord } from './mount-registry.js';
import type { OpCount } from './op-stats.js';

export interface NamespaceBenchOptions {
  /** Files created, renamed and unlinked one by one (default 2,000). */
  count?: number;
  /** Files removed by one `rm -rf` (default 10,000). */
  rmCount?: number;
  /** Recycle-bin days of the filesystems measured (default [1, 0]). */
  trashDays?: number[];
  /** Which mounts: the default one (`sync`) and/or one with --async-unlink (`async`); default both. */
  modes?: Array<'sync' | 'async'>;
}

const here = dirname(fileURLToPath(import.meta.url));
const cliPath = join(here, '..', 'cli', 'main.js');
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

function cli(args: string[], env: NodeJS.ProcessEnv): string {
  return execFileSync(process.execPath, [cliPath, ...args], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] });
}

function loop(job: LoopJob): Promise<LoopResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(join(here, 'bench-worker.js'), { workerData: job });
    w.once('message', (r: LoopResult) => resolve(r));
    w.once('error', reject);
    w.once('exit', (code) => code !== 0 && reject(new Error(`bench worker exited with ${code}`)));
  });
}

type Counts = { fuse: Record<string, number>; meta: Record<string, number> };

async function counts(socket: string): Promise<Counts> {
  const s = (await adminRequest(socket, 'stats', 30_000)) as { ops: { fuse: Record<string, OpCount>; meta: Record<string, OpCount> } };
  const pick = (o: Record<string, OpCount>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v.count]));
  return { fuse: pick(s.ops.fuse), meta: pick(s.ops.meta) };
}

/** Calls per operation between two snapshots (only those that moved). */
function perOp(a: Record<string, number>, b: Record<string, number>, ops: number): Record<string, number> {
  return Object.fromEntries(Object.keys(b).map((k) => [k, round((b[k]! - (a[k] ?? 0)) / ops)]).filter(([, n]) => n !== 0));
}

async function until(what: string, fn: () => boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`namespace bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The cases on one mount; `tag` goes into every line. */
async function runCases(mnt: string, socket: string, tag: Record<string, unknown>, count: number, rmCount: number): Promise<void> {
  const emit = (name: string, ops: number, seconds: number, before: Counts, after: Counts, extra: object = {}) =>
    process.stdout.write(`${JSON.stringify({
      bench: 'namespace', case: name, ...tag, ops, ops_per_s: round(ops / seconds, 1), seconds: round(seconds, 3),
      kernel_per_op: perOp(before.fuse, after.fuse, ops), meta_per_op: perOp(before.meta, after.meta, ops), ...extra,
    })}\n`);
  const dir = join(mnt, `names-${Date.now()}`);
  mkdirSync(dir);
  // What an --async-unlink mount answered early is committed by the admin flush: timed too.
  const committed = async (seconds: number, ops: number) => {
    const t = process.hrtime.bigint();
    await adminRequest(socket, 'flush', 600_000);
    return { until_committed_ops_per_s: round(ops / (seconds + Number(process.hrtime.bigint() - t) / 1e9), 1) };
  };
  for (const op of ['create', 'rename', 'unlink'] as const) {
    const before = await counts(socket);
    const r = await loop({ op, dir, prefix: 'f', from: 0, count });
    const extra = await committed(r.seconds, r.ops);
    emit(op, r.ops, r.seconds, before, await counts(socket), extra);
  }

  const tree = join(mnt, `tree-${Date.now()}`);
  const per = Math.ceil(rmCount / 10);
  for (let d = 0; d < 10; d++) mkdirSync(join(tree, `d${d}`), { recursive: true });
  let before = await counts(socket);
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: 10 }, (_, d) => loop({ op: 'create', dir: join(tree, `d${d}`), prefix: 'f', from: 0, count: per })));
  const made = Number(process.hrtime.bigint() - t0) / 1e9;
  emit('create_10dirs', per * 10, made, before, await counts(socket), { threads: 10 });
  // The kernel's caches of the tree go first, as after a while or on another host.
  execFileSync('sh', ['-c', 'echo 2 > /proc/sys/vm/drop_caches']);
  before = await counts(socket);
  const t1 = process.hrtime.bigint();
  execFileSync('rm', ['-rf', tree]);
  const secs = Number(process.hrtime.bigint() - t1) / 1e9;
  emit('rm_rf', per * 10, secs, before, await counts(socket), { files: per * 10, dirs: 11 });
}

export async function runNamespaceBench(opts: NamespaceBenchOptions = {}): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the namespace bench mounts: run it as root');
  const count = opts.count ?? 2000;
  const rmCount = opts.rmCount ?? 10_000;
  for (const trashDays of opts.trashDays ?? [1, 0]) {
    const root = mkdtempSync(join(tmpdir(), 'tierfs-bench-ns-'));
    const env = { ...process.env, TIERFS_RUN_DIR: join(root, 'run'), TIERFS_LOG_LEVEL: process.env.TIERFS_LOG_LEVEL ?? 'warn' };
    const data = join(root, 'cluster');
    const mnt = join(root, 'mnt');
    const asyncMnt = join(root, 'mnt-async');
    let second: ChildProcess | null = null;
    try {
      cli(['up', '--data-dir', data, '--mount', mnt, '--trash-days', String(trashDays)], env);
      const state = JSON.parse(readFileSync(join(data, 'cluster.json'), 'utf8')) as { mdsAddresses: string[] };
      mkdirSync(asyncMnt);
      second = spawn(process.execPath, [cliPath, 'mount', '--mds', state.mdsAddresses.join(','), '--fs', 'default', asyncMnt,
        '--cache-dir', join(root, 'cache-async'), '--cluster-key-file', join(data, 'cluster.key'), '--async-unlink'], { env, stdio: 'ignore' });
      process.env.TIERFS_RUN_DIR = env.TIERFS_RUN_DIR; // readMountRecord looks there
      await until('the --async-unlink mount', () => isMountedAt(asyncMnt) && readMountRecord(asyncMnt) !== null);
      const modes = opts.modes ?? ['sync', 'async'];
      for (const [m, asyncUnlink] of [[mnt, false], [asyncMnt, true]] as const) {
        if (!modes.includes(asyncUnlink ? 'async' : 'sync')) continue;
        const socket = readMountRecord(m)?.adminSocket;
        if (!socket) throw new Error(`no admin socket for ${m}`);
        const load = loadavg().map((x) => round(x, 1));
        await runCases(m, socket, { trash_days: trashDays, async_unlink: asyncUnlink, load }, count, rmCount);
      }
    } finally {
      if (second && second.exitCode === null) {
        second.kill('SIGTERM');
        await new Promise((r) => second!.once('exit', r));
      }
      try {
        cli(['down', '--data-dir', data], env);
      } catch (err) {
        process.stderr.write(`namespace bench: tierfs down failed: ${String(err)}\n`);
      }
      rmSync(root, { recursive: true, force: true });
    }
  }
}
