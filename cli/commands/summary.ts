// `tierfs summary DIR`: files, directories, symlinks and bytes under a directory, counted by the
// metaservers' listings and batched attribute reads (metaserver/tree-summary.ts), not by
// reading every inode through FUSE. DIR on a mount, or --fs NAME --path /dir.
import Table from 'cli-table3';
import type { Command } from 'commander';
import { StatusCode, TierfsError } from '../../common/status.js';
import { summarizeTree } from '../../metaserver/tree-summary.js';
import { action } from '../errors.js';
import { clusterOptions, resolveFsPath, withFsMeta, type ClusterOpts } from '../fs-meta.js';
import { locateOnMount } from '../mount-path.js';
import { human } from './fs.js';

export function register(program: Command): void {
  clusterOptions(program.command('summary').description('files, directories and bytes under a directory, counted by the metaservers'))
    .argument('[dir]', 'a directory on a tierfs mount')
    .option('--fs <name>', 'filesystem (with --path, instead of a directory on a mount)')
    .option('--path <path>', 'directory inside --fs, from its root', '/')
    .option('--json', 'print JSON')
    .action(
      action(async (dir: string | undefined, o: ClusterOpts & { fs?: string; path: string; json?: boolean }) => {
        let fs: string;
        let fsPath: string;
        if (dir !== undefined) {
          const found = locateOnMount(dir);
          if (!found.mount.fs) throw new TierfsError(StatusCode.NOT_FOUND, `the mount at ${found.mount.mountpoint} did not record its filesystem name`);
          fs = found.mount.fs;
          fsPath = found.fsPath;
        } else if (o.fs) {
          fs = o.fs;
          fsPath = o.path;
        } else throw new TierfsError(StatusCode.INVALID_ARGUMENT, 'give a directory on a mount, or --fs NAME [--path /dir]');
        await withFsMeta(o, fs, async (meta) => {
          const ino = await resolveFsPath(meta, fsPath);
          const started = Date.now();
          const s = await summarizeTree(meta, ino, o.json || !process.stderr.isTTY ? undefined : (x) => process.stderr.write(`summary: ${x.dirs} dirs, ${x.files} files...\r`));
          const result = { path: fsPath, fs, ...s, ms: Date.now() - started };
          if (o.json) process.stdout.write(JSON.stringify(result) + '\n');
          else {
            const t = new Table();
            t.push({ path: fsPath }, { files: String(s.files) }, { directories: String(s.dirs) }, { symlinks: String(s.symlinks) }, { other: String(s.others) }, { bytes: `${s.bytes} (${human(s.bytes)})` });
            process.stdout.write(t.toString() + '\n');
          }
        });
      }),
    );
}
