// `tierfs cache stats|flush|warmup|evict|config --mount M`: the disk cache and write path of
// a running mount, through its admin socket. Tables for people, --json for scripts, a
// progress bar for warmup.
import { SingleBar, Presets } from 'cli-progress';
import Table from 'cli-table3';
import { InvalidArgumentError, type Command } from 'commander';
import { StatusCode, TierfsError } from '../../common/status.js';
import { adminRequest } from '../../gateway/admin.js';
import { canonicalMountpoint, readMountRecord } from '../../gateway/mount-registry.js';
import { action } from '../errors.js';
import { regularFilesUnder, type WalkedFile } from '../file-walk.js';

function socketOf(opts: { mount?: string; adminSocket?: string }): string {
  if (opts.adminSocket) return opts.adminSocket;
  if (!opts.mount) throw new TierfsError(StatusCode.INVALID_ARGUMENT, 'give --mount MOUNTPOINT (or --admin-socket PATH)');
  const rec = readMountRecord(canonicalMountpoint(opts.mount));
  if (!rec) throw new TierfsError(StatusCode.NOT_FOUND, `no tierfs mount is registered at ${opts.mount}`);
  return rec.adminSocket;
}

/** Nested stats as dotted key -> value rows. */
export function flatten(value: unknown, prefix = '', out: Array<[string, unknown]> = []): Array<[string, unknown]> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out.push([prefix, value]);
  }
  return out;
}

export function formatStat(key: string, value: unknown): string {
  if (typeof value !== 'number') return value === null || value === undefined ? '-' : String(value);
  const leaf = key.split('.').pop()!;
  if (/bytespersec$/i.test(leaf)) return `${(value / 2 ** 20).toFixed(1)} MiB/s`;
  if (/bytes$/i.test(leaf)) return value >= 2 ** 20 ? `${(value / 2 ** 20).toFixed(1)} MiB` : `${value} B`;
  if (/ms$/i.test(leaf)) return value >= 1000 ? `${(value / 1000).toFixed(1)} s` : `${Math.round(value)} ms`;
  if (/(ratio|usage)$/i.test(leaf)) return `${(value * 100).toFixed(1)} %`;
  return Number.isInteger(value) ? String(value) : value.toFixed(3);
}

function printTable(result: unknown): void {
  const table = new Table({ head: ['stat', 'value'] });
  for (const [k, v] of flatten(result)) table.push([k, formatStat(k, v)]);
  process.stdout.write(table.toString() + '\n');
}

interface PathResult {
  path: string;
  result?: { blocks: number; bytes: number; fetchedBlocks?: number; fetchedBytes?: number; skippedFull?: number };
  error?: string;
}

/** Files per admin request: small enough for a smooth progress bar, large enough to batch. */
const BATCH = 8;

/** Sends the files in batches, showing bytes done on stderr; sums the results. */
async function perFile(socket: string, cmd: 'warmup' | 'evict', files: WalkedFile[], progress: boolean, group = false) {
  const total = files.reduce((s, f) => s + f.size, 0);
  const bar = progress && process.stderr.isTTY ? new SingleBar({ format: `${cmd} [{bar}] {percentage}% | {value}/{total} MiB | {files} files`, stream: process.stderr }, Presets.shades_classic) : null;
  bar?.start(Math.ceil(total / 2 ** 20), 0, { files: 0 });
  const sum = { files: 0, blocks: 0, bytes: 0, fetchedBlocks: 0, fetchedBytes: 0, skippedFull: 0, errors: 0 };
  const errors: string[] = [];
  let doneBytes = 0;
  for (let i = 0; i < files.length; i += BATCH) {
    const batch = files.slice(i, i + BATCH);
    const answer = (await adminRequest(socket, cmd, 3_600_000, { paths: batch.map((f) => f.path), ...(group ? { group } : {}) })) as PathResult[];
    for (const r of answer) {
      if (r.error !== undefined || !r.result) {
        sum.errors++;
        errors.push(`${r.path}: ${r.error ?? 'no result'}`);
        continue;
      }
      sum.files++;
      sum.blocks += r.result.blocks;
      sum.bytes += r.result.bytes;
      sum.fetchedBlocks += r.result.fetchedBlocks ?? 0;
      sum.fetchedBytes += r.result.fetchedBytes ?? 0;
      sum.skippedFull += r.result.skippedFull ?? 0;
    }
    doneBytes += batch.reduce((s, f) => s + f.size, 0);
    bar?.update(Math.ceil(doneBytes / 2 ** 20), { files: Math.min(files.length, i + BATCH) });
  }
  bar?.stop();
  return { sum, errors };
}

function report(result: { sum: Record<string, number>; errors: string[] }, json: boolean | undefined): void {
  if (json) process.stdout.write(JSON.stringify(result) + '\n');
  else printTable(result.sum);
  for (const e of result.errors.slice(0, 20)) process.stderr.write(`tierfs: ${e}\n`);
  if (result.errors.length > 20) process.stderr.write(`tierfs: ... and ${result.errors.length - 20} more\n`);
  if (result.errors.length > 0) process.exitCode = 1;
}

function positiveNumber(flag: string, max = Number.MAX_SAFE_INTEGER): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0 || n > max) throw new InvalidArgumentError(`${flag} must be a number in (0, ${max}]`);
    return n;
  };
}

interface ConfigOpts {
  mount?: string;
  adminSocket?: string;
  json?: boolean;
  capacity?: number;
  maxFiles?: number;
  stageWatermark?: number;
  trimHigh?: number;
  trimLow?: number;
  uploadConcurrency?: number;
}

export function register(program: Command): void {
  const cache = program.command('cache').description('disk cache and write path of a running mount');
  const common = (c: Command) =>
    c.option('--mount <mountpoint>', 'the mount to ask').option('--admin-socket <path>', 'its admin socket (instead of --mount)').option('--json', 'print JSON');
  common(cache.command('stats').description('staged blocks/bytes, oldest staged age, upload rate, hit ratio, usage vs limits')).action(
    action(async (opts: { mount?: string; adminSocket?: string; json?: boolean }) => {
      const result = await adminRequest(socketOf(opts), 'stats', 30_000);
      if (opts.json) process.stdout.write(JSON.stringify(result) + '\n');
      else printTable(result);
    }),
  );
  common(cache.command('flush').description('returns once everything written so far is in S3')).action(
    action(async (opts: { mount?: string; adminSocket?: string; json?: boolean }) => {
      const result = await adminRequest(socketOf(opts), 'flush');
      if (opts.json) process.stdout.write(JSON.stringify(result) + '\n');
      else printTable(result);
    }),
  );
  common(cache.command('warmup').description('fetch the blocks of files (directories: everything under them) into the disk cache').argument('<paths...>', 'files or directories on the mount'))
    .option('--no-progress', 'no progress bar')
    .option('--group', 'fill the cache group (cache nodes) instead of this mount\'s disk cache')
    .action(
      action(async (paths: string[], opts: { mount?: string; adminSocket?: string; json?: boolean; progress: boolean; group?: boolean }) => {
        const socket = socketOf(opts);
        report(await perFile(socket, 'warmup', await regularFilesUnder(paths), opts.progress && !opts.json, !!opts.group), opts.json);
      }),
    );
  common(cache.command('evict').description('drop cached blocks of files (or of everything, without paths); blocks not yet in S3 stay').argument('[paths...]', 'files or directories on the mount'))
    .option('--no-progress', 'no progress bar')
    .option('--group', 'drop the files\' blocks from the cache group (cache nodes) instead')
    .action(
      action(async (paths: string[], opts: { mount?: string; adminSocket?: string; json?: boolean; progress: boolean; group?: boolean }) => {
        const socket = socketOf(opts);
        if (paths.length === 0) {
          const { all } = (await adminRequest(socket, 'evict', 600_000, {})) as { all: { blocks: number; bytes: number } };
          report({ sum: all, errors: [] }, opts.json);
          return;
        }
        report(await perFile(socket, 'evict', await regularFilesUnder(paths), opts.progress && !opts.json, !!opts.group), opts.json);
      }),
    );
  cache
    .command('group')
    .description('the cache group (cache nodes)')
    .command('status')
    .description('members of the cache group: state, usage, hit ratio')
    .requiredOption('--mds <addrs>', 'MDS addresses, host:port[,host:port...]')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { mds: string; json?: boolean }) => {
        const { MdsClient } = await import('../../mds/client.js');
        const mds = new MdsClient(opts.mds, { deadlineMs: 10_000 });
        try {
          const nodes = (await mds.clusterStatus()).cache_nodes ?? [];
          if (opts.json) {
            process.stdout.write(JSON.stringify({ nodes }) + '\n');
            return;
          }
          const table = new Table({ head: ['id', 'address', 'state', 'used', 'capacity', 'usage', 'blocks', 'hit ratio', 'corrupt'] });
          for (const n of nodes) {
            const used = Number(n.used_bytes);
            const cap = Number(n.capacity_bytes);
            table.push([n.id, n.address, n.state, formatStat('bytes', used), formatStat('bytes', cap), formatStat('usage', cap > 0 ? used / cap : 0), Number(n.blocks), formatStat('ratio', n.hit_ratio), Number(n.corrupt_blocks)]);
          }
          process.stdout.write(nodes.length === 0 ? 'no cache nodes registered\n' : table.toString() + '\n');
        } finally {
          mds.close();
        }
      }),
    );
  common(cache.command('config').description('show the disk cache limits, or change them on the running mount'))
    .option('--capacity <MiB>', 'byte cap of the cache', positiveNumber('--capacity'))
    .option('--max-files <n>', 'file-count cap', positiveNumber('--max-files'))
    .option('--stage-watermark <fraction>', 'stop staging writes above this usage (0..1]', positiveNumber('--stage-watermark', 1))
    .option('--trim-high <fraction>', 'start trimming read blocks above this usage', positiveNumber('--trim-high', 1))
    .option('--trim-low <fraction>', 'trim down to this usage', positiveNumber('--trim-low', 1))
    .option('--upload-concurrency <n>', 'uploads to S3 in flight', positiveNumber('--upload-concurrency', 256))
    .action(
      action(async (opts: ConfigOpts) => {
        const changes = {
          ...(opts.capacity !== undefined ? { capacityBytes: Math.floor(opts.capacity * 2 ** 20) } : {}),
          ...(opts.maxFiles !== undefined ? { maxFiles: Math.floor(opts.maxFiles) } : {}),
          ...(opts.stageWatermark !== undefined ? { stageWatermark: opts.stageWatermark } : {}),
          ...(opts.trimHigh !== undefined ? { trimHighWatermark: opts.trimHigh } : {}),
          ...(opts.trimLow !== undefined ? { trimLowWatermark: opts.trimLow } : {}),
          ...(opts.uploadConcurrency !== undefined ? { uploadConcurrency: Math.floor(opts.uploadConcurrency) } : {}),
        };
        const limits = await adminRequest(socketOf(opts), 'config', 30_000, changes);
        if (opts.json) process.stdout.write(JSON.stringify(limits) + '\n');
        else printTable(limits);
      }),
    );
}
