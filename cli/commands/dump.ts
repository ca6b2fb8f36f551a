// `tierfs dump --fs NAME FILE`: every inode, dentry, xattr and slice list of a filesystem as
// JSON lines (metaserver/dump.ts documents the format), gzip when FILE ends in .gz, "-" for
// stdout; streamed, with a progress bar on stderr.
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { SingleBar, Presets } from 'cli-progress';
import type { Command } from 'commander';
import { dumpTree, type DumpLine } from '../../metaserver/dump.js';
import { action } from '../errors.js';
import { clusterOptions, withFsMeta, type ClusterOpts } from '../fs-meta.js';

export function register(program: Command): void {
  clusterOptions(program.command('dump').description('back up the metadata of a filesystem (JSON lines; .gz compresses)'))
    .requiredOption('--fs <name>', 'filesystem name')
    .argument('<file>', 'output file (- for stdout)')
    .option('--no-progress', 'no progress bar')
    .action(
      action(async (file: string, o: ClusterOpts & { fs: string; progress: boolean }) => {
        await withFsMeta(o, o.fs, async (meta, info) => {
          const sink: Writable = file === '-' ? process.stdout : createWriteStream(file, { mode: 0o600 });
          const gzip = file.endsWith('.gz') ? createGzip() : null;
          if (gzip) gzip.pipe(sink);
          const out: Writable = gzip ?? sink;
          const write = async (line: DumpLine) => {
            if (!out.write(JSON.stringify(line) + '\n')) await once(out, 'drain');
          };
          const bar = o.progress && process.stderr.isTTY ? new SingleBar({ format: 'dump [{bar}] {value}/{total} inodes', stream: process.stderr }, Presets.shades_classic) : null;
          bar?.start(Math.max(1, Number(info.inode_count)), 0);
          const done = await dumpTree(meta, {
            type: 'header', version: 1, fs: info.name, fsId: info.fs_id, blockSize: Number(info.block_size), chunkSize: Number(info.chunk_size),
            bucket: info.s3?.bucket ?? '', keyPrefix: info.s3?.key_prefix ?? '', dumpedAt: new Date().toISOString(),
          }, write, (n) => bar?.update(n, { total: Math.max(n, Number(info.inode_count)) }));
          bar?.stop();
          if (file !== '-') {
            out.end();
            await once(sink, 'finish');
          }
          process.stderr.write(`dumped ${done.inodes} inodes, ${done.dentries} names of ${info.name}${file === '-' ? '' : ` to ${file}`}\n`);
        });
      }),
    );
}
