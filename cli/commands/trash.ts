// `tierfs trash list|restore|purge --fs NAME`: the recycle bin /.trash (metaserver/trash-bin.ts).
// A restore renames the entry back to its original path (or into --to DIR) and refuses a name
// that is taken; purge removes entries for good (their objects go with the metaserver's
// deletion queue). Quota usage follows the moves (sent like a mount's deltas).
import Table from 'cli-table3';
import type { Command } from 'commander';
import { StatusCode, TierfsError } from '../../common/status.js';
import { QuotaTracker, type QuotaChange } from '../../gateway/quota-tracker.js';
import type { RemoteMetaClient } from '../../metaserver/client.js';
import { ROOT_INO, S_IFDIR, S_IFMT, S_IFREG } from '../../metaserver/meta-client.js';
import { QuotaClient } from '../../metaserver/quota-client.js';
import { expired, listTrash, pathOfDir, purgeTrashEntry, type TrashEntry } from '../../metaserver/trash-bin.js';
import { action } from '../errors.js';
import { clusterOptions, resolveFsPath, withFsMeta, type ClusterOpts } from '../fs-meta.js';
import { human } from './fs.js';

interface TrashOpts extends ClusterOpts {
  fs: string;
  json?: boolean;
  to?: string;
  expired?: boolean;
}

interface Listed extends TrashEntry {
  /** The original path, or null when its directory is gone (restore with --to). */
  path: string | null;
  size: number;
}

async function listed(meta: RemoteMetaClient): Promise<{ trashIno: number | null; bins: Set<number>; entries: Listed[] }> {
  const { trashIno, bins, entries } = await listTrash(meta);
  const sizes = new Map((await meta.batchGetAttr(entries.map((e) => e.ino))).map((a) => [a.ino, a.size]));
  const dirs = new Map<number, string | null>();
  const out: Listed[] = [];
  for (const e of entries) {
    const dir = await pathOfDir(meta, e.parent, bins, dirs);
    out.push({ ...e, path: dir === null ? null : dir === '/' ? `/${e.name}` : `${dir}/${e.name}`, size: (e.type & S_IFMT) === S_IFREG ? (sizes.get(e.ino) ?? 0) : 0 });
  }
  return { trashIno, bins, entries: out };
}

/** Quota bookkeeping for moves made here rather than through a mount. */
async function quotaTracker(meta: RemoteMetaClient): Promise<QuotaTracker> {
  const tracker = new QuotaTracker(new QuotaClient(meta), async (dir) => (await meta.getInode(dir)).parents[0] ?? ROOT_INO);
  await tracker.refresh();
  return tracker;
}

export function register(program: Command): void {
  const trash = program.command('trash').description('the recycle bin of a filesystem (/.trash)');
  const common = (c: Command) => clusterOptions(c.requiredOption('--fs <name>', 'filesystem name')).option('--json', 'print JSON');

  common(trash.command('list').description('deleted files and directories: original path, size, deleted at')).action(
    action(async (o: TrashOpts) => {
      await withFsMeta(o, o.fs, async (meta) => {
        const { entries } = await listed(meta);
        if (o.json) {
          process.stdout.write(JSON.stringify(entries.map((e) => ({ entry: e.entry, path: e.path, ino: e.ino, dir: (e.type & S_IFMT) === S_IFDIR, size: e.size, deletedAt: new Date(e.deletedAtMs).toISOString() }))) + '\n');
          return;
        }
        const t = new Table({ head: ['deleted at', 'original path', 'size', 'entry'] });
        for (const e of entries) t.push([new Date(e.deletedAtMs).toISOString(), e.path ?? `(directory gone) ${e.name}`, (e.type & S_IFMT) === S_IFDIR ? 'dir' : human(e.size), e.entry]);
        process.stdout.write(t.toString() + '\n');
      });
    }),
  );

  common(trash.command('restore').description('put entries back where they were deleted (or into --to DIR); a taken name is refused'))
    .argument('<paths...>', 'original paths (the latest deletion of each) or entry names from trash list')
    .option('--to <dir>', 'restore into this directory instead')
    .action(
      action(async (paths: string[], o: TrashOpts) => {
        await withFsMeta(o, o.fs, async (meta) => {
          const { trashIno, bins, entries } = await listed(meta);
          if (trashIno === null) throw new TierfsError(StatusCode.NOT_FOUND, `the recycle bin of ${o.fs} is empty`);
          const picked = paths.map((p) => {
            const e = entries.find((x) => x.entry === p) ?? [...entries].reverse().find((x) => x.path === p);
            if (!e) throw new TierfsError(StatusCode.NOT_FOUND, `${p} is not in the recycle bin (see tierfs trash list)`);
            return e;
          });
          // Directories first, so files deleted from them find them back.
          picked.sort((a, b) => Number((b.type & S_IFMT) === S_IFDIR) - Number((a.type & S_IFMT) === S_IFDIR) || a.deletedAtMs - b.deletedAtMs);
          const toDir = o.to !== undefined ? await resolveFsPath(meta, o.to) : null;
          const quotas = await quotaTracker(meta);
          for (const e of picked) {
            const parent = toDir ?? e.parent;
            const where = o.to !== undefined ? `${o.to.replace(/\/$/, '')}/${e.name}` : (e.path ?? e.name);
            if (toDir === null && (e.path === null || (await meta.getInode(e.parent).then((i) => bins.has(i.parents[0] ?? 0), () => true)))) throw new TierfsError(StatusCode.NOT_FOUND, `the directory ${e.name} was deleted from is gone; restore it with --to DIR`);
            const taken = await meta.lookup(parent, e.name).then(() => true, (err: unknown) => {
              if (err instanceof TierfsError && err.code === StatusCode.NOT_FOUND) return false;
              throw err;
            });
            if (taken) throw new TierfsError(StatusCode.EXISTS, `cannot restore ${where}: the name is taken; move it away first or restore with --to DIR`);
            const bytes = (e.type & S_IFMT) === S_IFREG ? e.size : 0;
            const changes: QuotaChange[] = [
              { quotas: await quotas.quotasAbove(trashIno), bytes: -bytes, inodes: -1 },
              { quotas: await quotas.quotasAbove(parent), bytes, inodes: 1 },
            ];
            quotas.check(changes);
            await meta.rename(e.dir, e.entry, parent, e.name);
            quotas.account(changes);
            process.stdout.write(o.json ? JSON.stringify({ restored: where, ino: e.ino }) + '\n' : `restored ${where}\n`);
          }
          await quotas.send();
        });
      }),
    );

  common(trash.command('purge').description('remove entries for good (all, or only the expired ones)'))
    .option('--expired', 'only entries older than the filesystem\'s trash days')
    .action(
      action(async (o: TrashOpts) => {
        await withFsMeta(o, o.fs, async (meta, info) => {
          const { trashIno, entries } = await listed(meta);
          if (trashIno === null) return;
          const gone = o.expired ? expired(entries, info.trash_days, Date.now()) : entries;
          const quotas = await quotaTracker(meta);
          const above = await quotas.quotasAbove(trashIno);
          let purged = 0;
          // Files before directories: a directory in the bin is empty once its files are gone.
          for (const e of [...gone].sort((a, b) => Number((a.type & S_IFMT) === S_IFDIR) - Number((b.type & S_IFMT) === S_IFDIR))) {
            await purgeTrashEntry(meta, e);
            quotas.account([{ quotas: above, bytes: -e.size, inodes: -1 }]);
            purged++;
          }
          await quotas.send();
          process.stdout.write(o.json ? JSON.stringify({ purged }) + '\n' : `purged ${purged} entries\n`);
        });
      }),
    );
}
