// `tierfs info PATH`: one file or directory as the metaservers hold it — inode, attributes,
// names of its xattrs, slices per chunk and the S3 objects behind them, with which of those
// are in this mount's disk cache (read/) or still staged for upload (write/).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Table from 'cli-table3';
import type { Command } from 'commander';
import { StatusCode, TierfsError } from '../../common/status.js';
import { S_IFMT, S_IFREG } from '../../metaserver/meta-client.js';
import { sliceKeys } from '../../s3adaptor/index.js';
import { action } from '../errors.js';
import { clusterOptions, resolveFsPath, withFsMeta, type ClusterOpts } from '../fs-meta.js';
import { locateOnMount } from '../mount-path.js';

const TYPES: Record<number, string> = { 0o100000: 'file', 0o040000: 'directory', 0o120000: 'symlink', 0o010000: 'fifo', 0o020000: 'char device', 0o060000: 'block device', 0o140000: 'socket' };

export function register(program: Command): void {
  clusterOptions(program.command('info').description('inode, attributes, slices and S3 objects of a path on a mount (and which objects are cached)'))
    .argument('<path>', 'a file or directory on a tierfs mount')
    .option('--json', 'print JSON')
    .action(
      action(async (path: string, o: ClusterOpts & { json?: boolean }) => {
        const { mount, fsPath } = locateOnMount(path);
        if (!mount.fs) throw new TierfsError(StatusCode.NOT_FOUND, `the mount at ${mount.mountpoint} did not record its filesystem name`);
        const cacheDir = join(dirname(mount.adminSocket), 'blocks');
        await withFsMeta(o, mount.fs, async (meta, info) => {
          const ino = await resolveFsPath(meta, fsPath);
          const inode = await meta.getInode(ino);
          const xattrs = inode.xattrNames ?? (await meta.listXattr(ino));
          const chunks = (inode.mode & S_IFMT) === S_IFREG ? [...(await meta.getSlices(ino))].sort((a, b) => a[0] - b[0]) : [];
          const prefix = info.s3?.key_prefix ?? '';
          const objects: Array<{ key: string; chunk: number; cached: boolean; staged: boolean }> = [];
          for (const [index, slices] of chunks) {
            for (const s of slices) {
              for (const key of sliceKeys(info.fs_id, ino, index, s, Number(info.block_size), Number(info.chunk_size))) {
                objects.push({ key: prefix + key, chunk: index, cached: existsSync(join(cacheDir, 'read', key)), staged: existsSync(join(cacheDir, 'write', key)) });
              }
            }
          }
          const result = {
            path: fsPath, mount: mount.mountpoint, fs: info.name, ino, type: TYPES[inode.mode & S_IFMT] ?? 'unknown',
            mode: `0${(inode.mode & 0o7777).toString(8)}`, uid: inode.uid, gid: inode.gid, size: inode.size, nlink: inode.nlink,
            atime: new Date(inode.atimeMs).toISOString(), mtime: new Date(inode.mtimeMs).toISOString(), ctime: new Date(inode.ctimeMs).toISOString(),
            parents: inode.parents, ...(inode.symlink ? { symlink: inode.symlink } : {}), xattrs,
            chunks: chunks.map(([index, slices]) => ({ index, slices })),
            objects, cachedObjects: objects.filter((x) => x.cached).length,
          };
          if (o.json) {
            process.stdout.write(JSON.stringify(result) + '\n');
            return;
          }
          const t = new Table();
          t.push(
            { path: result.path }, { inode: String(ino) }, { type: result.type }, { mode: result.mode }, { 'uid/gid': `${inode.uid}/${inode.gid}` },
            { size: String(inode.size) }, { nlink: String(inode.nlink) }, { mtime: result.mtime }, { ctime: result.ctime },
            { parents: inode.parents.join(', ') }, { xattrs: xattrs.join(', ') || '-' },
            { slices: chunks.map(([i, s]) => `chunk ${i}: ${s.length}`).join('\n') || '-' },
            { objects: `${objects.length} (${result.cachedObjects} in the disk cache, ${objects.filter((x) => x.staged).length} staged)` },
          );
          if (inode.symlink) t.push({ target: inode.symlink });
          process.stdout.write(t.toString() + '\n');
          for (const x of objects.slice(0, 50)) process.stdout.write(`  ${x.key}${x.cached ? '  cached' : ''}${x.staged ? '  staged' : ''}\n`);
          if (objects.length > 50) process.stdout.write(`  ... and ${objects.length - 50} more (--json lists all)\n`);
        });
      }),
    );
}
