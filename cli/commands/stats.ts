// `tierfs stats --mount M [--interval 1] [--json]`: a live view of a running mount in the style
// of `juicefs stats`, from its admin socket: every interval, the change of its counters —
// FUSE operations per second and their mean latency, metadata calls, S3 GETs and PUTs (each
// as requests and bytes), cache hits, staged backlog and upload rate. --json prints one line per interval.
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { StatusCode, TierfsError } from '../../common/status.js';
import { adminRequest } from '../../gateway/admin.js';
import { canonicalMountpoint, readMountRecord } from '../../gateway/mount-registry.js';
import type { OpCount } from '../../gateway/op-stats.js';
import { action } from '../errors.js';

interface Sample {
  atMs: number;
  fuse: Record<string, OpCount>;
  meta: Record<string, OpCount>;
  s3: { requests: number; errors: number; bytesPut: number; bytesGot: number; gets?: number; puts?: number; inFlight: number };
  disk: { hits: number; misses: number; stagedBlocks: number; stagedBytes: number; uploadBytesPerSec: number; usedBytes: number } | null;
}

async function sample(socket: string): Promise<Sample> {
  const s = (await adminRequest(socket, 'stats', 10_000)) as {
    ops?: { fuse: Record<string, OpCount>; meta: Record<string, OpCount> };
    data: { s3: Sample['s3']; disk: Sample['disk'] };
  };
  return { atMs: Date.now(), fuse: s.ops?.fuse ?? {}, meta: s.ops?.meta ?? {}, s3: s.data.s3, disk: s.data.disk };
}

interface OpRate {
  perSec: number;
  avgMs: number;
  errors: number;
}

function opRates(before: Record<string, OpCount>, after: Record<string, OpCount>, secs: number): { total: OpRate; byOp: Record<string, OpRate> } {
  const byOp: Record<string, OpRate> = {};
  let count = 0;
  let ms = 0;
  let errors = 0;
  for (const [op, a] of Object.entries(after)) {
    const b = before[op] ?? { count: 0, errors: 0, totalMs: 0 };
    const n = a.count - b.count;
    if (n <= 0) continue;
    byOp[op] = { perSec: n / secs, avgMs: (a.totalMs - b.totalMs) / n, errors: a.errors - b.errors };
    count += n;
    ms += a.totalMs - b.totalMs;
    errors += a.errors - b.errors;
  }
  return { total: { perSec: count / secs, avgMs: count ? ms / count : 0, errors }, byOp };
}

/** What changed between two samples, per second. */
export function interval(before: Sample, after: Sample) {
  const secs = Math.max(0.001, (after.atMs - before.atMs) / 1000);
  const hits = (after.disk?.hits ?? 0) - (before.disk?.hits ?? 0);
  const misses = (after.disk?.misses ?? 0) - (before.disk?.misses ?? 0);
  return {
    time: new Date(after.atMs).toISOString(),
    fuse: opRates(before.fuse, after.fuse, secs),
    meta: opRates(before.meta, after.meta, secs),
    s3: {
      requestsPerSec: (after.s3.requests - before.s3.requests) / secs,
      // A mount older than the split sends no gets/puts: 0, not NaN.
      getsPerSec: ((after.s3.gets ?? 0) - (before.s3.gets ?? 0)) / secs,
      getBytesPerSec: (after.s3.bytesGot - before.s3.bytesGot) / secs,
      putsPerSec: ((after.s3.puts ?? 0) - (before.s3.puts ?? 0)) / secs,
      putBytesPerSec: (after.s3.bytesPut - before.s3.bytesPut) / secs,
      errors: after.s3.errors - before.s3.errors,
      inFlight: after.s3.inFlight,
    },
    cache: {
      hitsPerSec: hits / secs,
      missesPerSec: misses / secs,
      hitRatio: hits + misses > 0 ? hits / (hits + misses) : null,
      stagedBlocks: after.disk?.stagedBlocks ?? 0,
      stagedBytes: after.disk?.stagedBytes ?? 0,
      uploadBytesPerSec: after.disk?.uploadBytesPerSec ?? 0,
      usedBytes: after.disk?.usedBytes ?? 0,
    },
  };
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
const pad = (s: string, n: number) => s.padStart(n);

function row(i: ReturnType<typeof interval>): string {
  const top = Object.entries(i.fuse.byOp).sort((a, b) => b[1].perSec - a[1].perSec).slice(0, 3).map(([op, r]) => `${op} ${r.perSec.toFixed(0)}`).join(' ');
  return [
    i.time.slice(11, 19),
    pad(i.fuse.total.perSec.toFixed(0), 7), pad(i.fuse.total.avgMs.toFixed(2), 8),
    pad(i.meta.total.perSec.toFixed(0), 7), pad(i.meta.total.avgMs.toFixed(2), 8),
    pad(i.s3.getsPerSec.toFixed(0), 6), pad(mib(i.s3.getBytesPerSec), 10), pad(i.s3.putsPerSec.toFixed(0), 6), pad(mib(i.s3.putBytesPerSec), 10),
    pad(i.cache.hitRatio === null ? '-' : `${(i.cache.hitRatio * 100).toFixed(0)}%`, 5),
    pad(mib(i.cache.stagedBytes), 10), pad(mib(i.cache.uploadBytesPerSec), 10),
    `  ${top}`,
  ].join(' ');
}

const HEADER = `${'time'.padEnd(8)} ${pad('fuse/s', 7)} ${pad('fuse ms', 8)} ${pad('meta/s', 7)} ${pad('meta ms', 8)} ${pad('get/s', 6)} ${pad('get data/s', 10)} ${pad('put/s', 6)} ${pad('put data/s', 10)} ${pad('hit', 5)} ${pad('staged', 10)} ${pad('upload/s', 10)}  busiest ops/s`;

export function register(program: Command): void {
  program
    .command('stats')
    .description('live view of a mount: FUSE ops and latency, metadata calls, S3 traffic, cache hits, staged backlog, upload rate')
    .option('--mount <mountpoint>', 'the mount to watch')
    .option('--admin-socket <path>', 'its admin socket (instead of --mount)')
    .option('--interval <s>', 'seconds between lines', (v) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0.1 || n > 3600) throw new InvalidArgumentError('--interval must be a number of seconds in [0.1, 3600]');
      return n;
    }, 1)
    .option('--count <n>', 'stop after n intervals (default: until interrupted)', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('--count must be a whole number >= 1');
      return n;
    })
    .option('--json', 'one JSON line per interval')
    .action(
      action(async (o: { mount?: string; adminSocket?: string; interval: number; count?: number; json?: boolean }) => {
        let socket = o.adminSocket;
        if (!socket) {
          if (!o.mount) throw new TierfsError(StatusCode.INVALID_ARGUMENT, 'give --mount MOUNTPOINT (or --admin-socket PATH)');
          const rec = readMountRecord(canonicalMountpoint(o.mount));
          if (!rec) throw new TierfsError(StatusCode.NOT_FOUND, `no tierfs mount is registered at ${o.mount}`);
          socket = rec.adminSocket;
        }
        let before = await sample(socket);
        for (let n = 0; o.count === undefined || n < o.count; n++) {
          await new Promise((r) => setTimeout(r, o.interval * 1000));
          const after = await sample(socket);
          const i = interval(before, after);
          before = after;
          if (o.json) process.stdout.write(JSON.stringify(i) + '\n');
          else {
            if (n % 20 === 0) process.stdout.write(HEADER + '\n');
            process.stdout.write(row(i) + '\n');
          }
        }
      }),
    );
}
