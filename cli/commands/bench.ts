// `tierfs bench DIR`: the `juicefs bench` shape — a big file written (fsync + close) and read
// back, small files written and read, and stat of them — with a progress bar and a table,
// or one JSON line per phase. `--compare LOCALDIR` runs the same on a local directory.
import { mkdir, open, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import Table from 'cli-table3';
import type { Command } from 'commander';
import { StatusCode, TierfsError } from '../../common/status.js';
import { action } from '../errors.js';

interface BenchOpts {
  bigSize: string;
  ioSize: string;
  smallCount: string;
  smallSize: string;
  threads: string;
  json?: boolean;
  compare?: string;
  progress: boolean;
}

export interface BenchConfig {
  bigBytes: number;
  ioBytes: number;
  smallCount: number;
  smallBytes: number;
  threads: number;
  progress: boolean;
}

export interface PhaseResult {
  phase: 'big-write' | 'big-read' | 'small-write' | 'small-read' | 'stat';
  seconds: number;
  bytes: number;
  files: number;
  mib_per_s: number;
  files_per_s: number;
  ms_per_file: number;
}

function positive(name: string, v: string, min = 1): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new TierfsError(StatusCode.INVALID_ARGUMENT, `--${name} = ${v}: must be a number >= ${min}`);
  return n;
}

/** Runs `count` jobs with `threads` at a time. */
async function parallel(count: number, threads: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await job(next++);
  };
  await Promise.all(Array.from({ length: Math.min(threads, count) }, worker));
}

class Progress {
  private bar: SingleBar | null = null;
  constructor(private readonly enabled: boolean) {}
  start(label: string, total: number): void {
    if (!this.enabled) return;
    this.bar = new SingleBar({ format: `${label.padEnd(28)} [{bar}] {percentage}% | {value}/{total}`, stream: process.stderr }, Presets.shades_classic);
    this.bar.start(total, 0);
  }
  tick(n = 1): void {
    this.bar?.increment(n);
  }
  stop(): void {
    this.bar?.stop();
    this.bar = null;
  }
}

function result(phase: PhaseResult['phase'], startedNs: bigint, bytes: number, files: number): PhaseResult {
  const seconds = Number(process.hrtime.bigint() - startedNs) / 1e9;
  return {
    phase, seconds, bytes, files,
    mib_per_s: bytes / 2 ** 20 / seconds,
    files_per_s: files / seconds,
    ms_per_file: files > 0 ? (seconds * 1000) / files : 0,
  };
}

export async function runBench(dir: string, cfg: BenchConfig, where = ''): Promise<PhaseResult[]> {
  const root = join(dir, `__tierfs_bench_${process.pid}_${Date.now()}`);
  await mkdir(root, { recursive: true });
  const progress = new Progress(cfg.progress);
  const out: PhaseResult[] = [];
  const block = Buffer.alloc(cfg.ioBytes);
  for (let i = 0; i < block.length; i++) block[i] = (i * 2654435761) >>> 24;
  const blocksPerBig = Math.ceil(cfg.bigBytes / cfg.ioBytes);
  const bigFile = (t: number) => join(root, `big.${t}`);
  const smallFile = (i: number) => join(root, `small.${i}`);
  const tag = where ? ` (${where})` : '';
  try {
    if (cfg.bigBytes > 0) {
      progress.start(`big file write${tag}`, blocksPerBig * cfg.threads);
      let t0 = process.hrtime.bigint();
      await parallel(cfg.threads, cfg.threads, async (t) => {
        const fh = await open(bigFile(t), 'w');
        try {
          for (let off = 0; off < cfg.bigBytes; off += cfg.ioBytes) {
            const len = Math.min(cfg.ioBytes, cfg.bigBytes - off);
            await fh.write(block, 0, len, off);
            progress.tick();
          }
          await fh.sync();
        } finally {
          await fh.close();
        }
      });
      progress.stop();
      out.push(result('big-write', t0, cfg.bigBytes * cfg.threads, cfg.threads));

      progress.start(`big file read${tag}`, blocksPerBig * cfg.threads);
      t0 = process.hrtime.bigint();
      await parallel(cfg.threads, cfg.threads, async (t) => {
        const fh = await open(bigFile(t), 'r');
        const buf = Buffer.alloc(cfg.ioBytes);
        try {
          for (let off = 0; off < cfg.bigBytes; off += cfg.ioBytes) {
            const { bytesRead } = await fh.read(buf, 0, Math.min(cfg.ioBytes, cfg.bigBytes - off), off);
            if (bytesRead === 0) throw new Error(`big file ${t} is short at ${off}`);
            progress.tick();
          }
        } finally {
          await fh.close();
        }
      });
      progress.stop();
      out.push(result('big-read', t0, cfg.bigBytes * cfg.threads, cfg.threads));
    }
    if (cfg.smallCount > 0) {
      const smallBody = block.length >= cfg.smallBytes ? block.subarray(0, cfg.smallBytes) : Buffer.alloc(cfg.smallBytes, 7);
      progress.start(`small files write${tag}`, cfg.smallCount);
      let t0 = process.hrtime.bigint();
      await parallel(cfg.smallCount, cfg.threads, async (i) => {
        const fh = await open(smallFile(i), 'w');
        try {
          await fh.write(smallBody, 0, smallBody.length, 0);
        } finally {
          await fh.close();
        }
        progress.tick();
      });
      progress.stop();
      out.push(result('small-write', t0, cfg.smallCount * cfg.smallBytes, cfg.smallCount));

      progress.start(`small files read${tag}`, cfg.smallCount);
      t0 = process.hrtime.bigint();
      await parallel(cfg.smallCount, cfg.threads, async (i) => {
        const fh = await open(smallFile(i), 'r');
        const buf = Buffer.alloc(cfg.smallBytes);
        try {
          await fh.read(buf, 0, buf.length, 0);
        } finally {
          await fh.close();
        }
        progress.tick();
      });
      progress.stop();
      out.push(result('small-read', t0, cfg.smallCount * cfg.smallBytes, cfg.smallCount));

      progress.start(`stat files${tag}`, cfg.smallCount);
      t0 = process.hrtime.bigint();
      await parallel(cfg.smallCount, cfg.threads, async (i) => {
        await stat(smallFile(i));
        progress.tick();
      });
      progress.stop();
      out.push(result('stat', t0, 0, cfg.smallCount));
    }
  } finally {
    progress.stop();
    await rm(root, { recursive: true, force: true });
  }
  return out;
}

function valueOf(r: PhaseResult): string {
  return r.phase.startsWith('big') ? `${r.mib_per_s.toFixed(1)} MiB/s` : `${r.files_per_s.toFixed(1)} files/s`;
}

function costOf(r: PhaseResult): string {
  return r.phase.startsWith('big') ? `${r.seconds.toFixed(2)} s` : `${r.ms_per_file.toFixed(2)} ms/file`;
}

export function register(program: Command): void {
  program
    .command('bench')
    .description('benchmark a directory (big file write/read, small files, stat) in the shape of juicefs bench')
    .argument('<dir>', 'a directory on the filesystem to test')
    .option('--big-size <MiB>', 'size of the big file per thread', '1024')
    .option('--io-size <KiB>', 'size of each read/write call', '1024')
    .option('--small-count <n>', 'number of small files', '100')
    .option('--small-size <KiB>', 'size of each small file', '128')
    .option('--threads <n>', 'concurrent workers', '1')
    .option('--compare <localdir>', 'run the same on a local directory and print ratios')
    .option('--json', 'print one JSON line per phase')
    .option('--no-progress', 'no progress bars')
    .action(
      action(async (dir: string, opts: BenchOpts) => {
        const cfg: BenchConfig = {
          bigBytes: Math.round(positive('big-size', opts.bigSize, 0) * 2 ** 20),
          ioBytes: Math.round(positive('io-size', opts.ioSize) * 1024),
          smallCount: Math.round(positive('small-count', opts.smallCount, 0)),
          smallBytes: Math.round(positive('small-size', opts.smallSize, 0) * 1024),
          threads: Math.round(positive('threads', opts.threads)),
          progress: opts.progress && !opts.json && process.stderr.isTTY === true,
        };
        const results = await runBench(dir, cfg, opts.compare ? 'tierfs' : '');
        const local = opts.compare ? await runBench(opts.compare, cfg, 'local') : null;
        if (opts.json) {
          for (const r of results) {
            const l = local?.find((x) => x.phase === r.phase);
            const ratio = l ? { local_mib_per_s: l.mib_per_s, local_files_per_s: l.files_per_s, ratio: r.phase.startsWith('big') ? r.mib_per_s / l.mib_per_s : r.files_per_s / l.files_per_s } : {};
            process.stdout.write(JSON.stringify({ bench: 'fs', dir, threads: cfg.threads, ...r, ...ratio }) + '\n');
          }
          return;
        }
        const head = local ? ['ITEM', 'VALUE', 'COST', 'LOCAL', 'RATIO'] : ['ITEM', 'VALUE', 'COST'];
        const table = new Table({ head });
        for (const r of results) {
          const row = [r.phase, valueOf(r), costOf(r)];
          const l = local?.find((x) => x.phase === r.phase);
          if (l) row.push(valueOf(l), `${((r.phase.startsWith('big') ? r.mib_per_s / l.mib_per_s : r.files_per_s / l.files_per_s) * 100).toFixed(1)} %`);
          table.push(row);
        }
        process.stdout.write(table.toString() + '\n');
      }),
    );
}
