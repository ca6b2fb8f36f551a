// `tierfs quota set|get|list|delete|check`: directory quotas (bytes and inodes) of a filesystem,
// kept by the metaservers (metaserver/quota.ts) and enforced by every mount (EDQUOT).
// `--path /` is the whole filesystem. `check` recounts the tree and, with --repair, fixes drift.
import Table from 'cli-table3';
import type { Command } from 'commander';
import { StatusCode, TierfsError } from '../../common/status.js';
import { QuotaClient, type QuotaRecord } from '../../metaserver/quota-client.js';
import { namesIn, summarizeTree } from '../../metaserver/tree-summary.js';
import type { RemoteMetaClient } from '../../metaserver/client.js';
import { action } from '../errors.js';
import { clusterOptions, resolveFsPath, withFsMeta, type ClusterOpts } from '../fs-meta.js';
import { human, parseSize } from './fs.js';

interface QuotaOpts extends ClusterOpts {
  fs: string;
  path?: string;
  bytes?: string;
  inodes?: string;
  repair?: boolean;
  json?: boolean;
}

function limit(used: number, max: number, fmt: (n: number) => string): string {
  return max > 0 ? `${fmt(used)} / ${fmt(max)} (${((100 * used) / max).toFixed(1)} %)` : `${fmt(used)} / unlimited`;
}

function print(quotas: QuotaRecord[], json: boolean | undefined): void {
  if (json) {
    process.stdout.write(JSON.stringify(quotas) + '\n');
    return;
  }
  const t = new Table({ head: ['path', 'inode', 'bytes used / limit', 'inodes used / limit'] });
  for (const q of quotas) t.push([q.path, q.ino, limit(q.usedBytes, q.maxBytes, human), limit(q.usedInodes, q.maxInodes, String)]);
  process.stdout.write(t.toString() + '\n');
}

function requirePath(o: QuotaOpts): string {
  if (!o.path) throw new TierfsError(StatusCode.INVALID_ARGUMENT, 'give --path /dir (/ for the whole filesystem)');
  return o.path;
}

async function quotaAt(meta: RemoteMetaClient, quotas: QuotaClient, path: string): Promise<QuotaRecord> {
  const ino = await resolveFsPath(meta, path);
  const q = (await quotas.list()).find((x) => x.ino === ino);
  if (!q) throw new TierfsError(StatusCode.NOT_FOUND, `no quota on ${path}`);
  return q;
}

function inodeCount(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) throw new TierfsError(StatusCode.INVALID_ARGUMENT, `--inodes "${text}": expected a whole number >= 0`);
  return n;
}

export function register(program: Command): void {
  const quota = program.command('quota').description('directory quotas (bytes, inodes) of a filesystem');
  const common = (c: Command) => clusterOptions(c.requiredOption('--fs <name>', 'filesystem name')).option('--json', 'print JSON');

  common(quota.command('set').description('set or change the limits of a directory (/ = the whole filesystem); 0 = no limit'))
    .option('--path <path>', 'directory, from the filesystem root')
    .option('--bytes <size>', 'byte limit (e.g. 100GiB)')
    .option('--inodes <n>', 'limit on files, directories and links under it')
    .action(
      action(async (o: QuotaOpts) => {
        const path = requirePath(o);
        if (o.bytes === undefined && o.inodes === undefined) throw new TierfsError(StatusCode.INVALID_ARGUMENT, 'give --bytes and/or --inodes');
        await withFsMeta(o, o.fs, async (meta) => {
          const quotas = new QuotaClient(meta);
          const ino = await resolveFsPath(meta, path);
          if (((await meta.getInode(ino)).mode & 0o170000) !== 0o040000) throw new TierfsError(StatusCode.NOT_DIR, `${path} is not a directory`);
          const existing = (await quotas.list()).find((q) => q.ino === ino);
          const limits = {
            maxBytes: o.bytes !== undefined ? parseSize(o.bytes, '--bytes') : (existing?.maxBytes ?? 0),
            maxInodes: o.inodes !== undefined ? inodeCount(o.inodes) : (existing?.maxInodes ?? 0),
          };
          // A new quota starts from a count of what is already there; an existing one keeps its usage.
          const usage = existing ? undefined : await summarizeTree(meta, ino).then((s) => ({ bytes: s.bytes, inodes: namesIn(s) }));
          print([await quotas.set(ino, path, limits, usage)], o.json);
        });
      }),
    );
  common(quota.command('get').description('limits and usage of one directory')).option('--path <path>', 'directory').action(
    action(async (o: QuotaOpts) => {
      await withFsMeta(o, o.fs, async (meta) => print([await quotaAt(meta, new QuotaClient(meta), requirePath(o))], o.json));
    }),
  );
  common(quota.command('list').description('every quota of the filesystem')).action(
    action(async (o: QuotaOpts) => {
      await withFsMeta(o, o.fs, async (meta) => print(await new QuotaClient(meta).list(), o.json));
    }),
  );
  common(quota.command('delete').description('remove the quota of a directory')).option('--path <path>', 'directory').action(
    action(async (o: QuotaOpts) => {
      await withFsMeta(o, o.fs, async (meta) => {
        const quotas = new QuotaClient(meta);
        const q = await quotaAt(meta, quotas, requirePath(o));
        await quotas.delete(q.ino);
        process.stdout.write(o.json ? JSON.stringify({ deleted: q.path }) + '\n' : `deleted the quota of ${q.path}\n`);
      });
    }),
  );
  common(quota.command('check').description('recount usage from the metadata (every quota, or --path); --repair writes the recount'))
    .option('--path <path>', 'only this directory')
    .option('--repair', 'replace drifted usage with the recount (run it while nothing writes under the directory)')
    .action(
      action(async (o: QuotaOpts) => {
        await withFsMeta(o, o.fs, async (meta) => {
          const quotas = new QuotaClient(meta);
          const all = o.path ? [await quotaAt(meta, quotas, o.path)] : await quotas.list();
          const rows: Array<{ path: string; ino: number; usedBytes: number; countedBytes: number; usedInodes: number; countedInodes: number; ok: boolean; repaired: boolean }> = [];
          for (const q of all) {
            const s = await summarizeTree(meta, q.ino);
            const ok = s.bytes === q.usedBytes && namesIn(s) === q.usedInodes;
            if (!ok && o.repair) await quotas.setUsage(q.ino, { bytes: s.bytes, inodes: namesIn(s) });
            rows.push({ path: q.path, ino: q.ino, usedBytes: q.usedBytes, countedBytes: s.bytes, usedInodes: q.usedInodes, countedInodes: namesIn(s), ok, repaired: !ok && !!o.repair });
          }
          if (o.json) process.stdout.write(JSON.stringify(rows) + '\n');
          else {
            const t = new Table({ head: ['path', 'bytes kept', 'bytes counted', 'inodes kept', 'inodes counted', 'result'] });
            for (const r of rows) t.push([r.path, r.usedBytes, r.countedBytes, r.usedInodes, r.countedInodes, r.ok ? 'ok' : r.repaired ? 'repaired' : 'DRIFT']);
            process.stdout.write(t.toString() + '\n');
          }
          if (rows.some((r) => !r.ok && !r.repaired)) process.exitCode = 1;
        });
      }),
    );
}
