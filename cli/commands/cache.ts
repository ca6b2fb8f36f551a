// `tierfs cache stats|flush --mount M`: the disk cache and write path of a running mount,
// through its admin socket. Tables for people, --json for scripts.
import Table from 'cli-table3';
import type { Command } from 'commander';
import { StatusCode, TierfsError } from '../../common/status.js';
import { adminRequest } from '../../gateway/admin.js';
import { canonicalMountpoint, readMountRecord } from '../../gateway/mount-registry.js';
import { action } from '../errors.js';

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
}
