// `tierfs dump --fs NAME FILE`: every inode, dentry, xattr and slice list of a filesystem as
// JSON lines (metaserver/dump.ts documents the format), gzip when FILE ends in .gz, "-" for
// stdout; with a progress bar on stderr. Each copyset streams its records at one Raft index
// into a spool, all taken under a dump fence so no rename across copysets is half in
// (metaserver/dump-snapshot.ts); the tree is walked from there.
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { SingleBar, Presets } from 'cli-progress';
import type { Command } from 'commander';
import { dumpTree, type DumpLine } from '../../metaserver/dump.js';
import { FsSnapshot } from '../../metaserver/dump-snapshot.js';
import { action } from '../errors.js';
import { clusterOptions, withMds, type ClusterOpts } from '../fs-meta.js';

export function register(program: Command): void {
  clusterOptions(program.command('dump').description('back up the metadata of a filesystem (JSON lines; .gz compresses)'))
    .requiredOption('--fs <name>', 'filesystem name')
    .argument('<file>', 'output file (- for stdout)')
    .option('--no-progress', 'no progress bar')
    .action(
      action(async (file: string, o: ClusterOpts & { fs: string; progress: boolean }) => {
        await withMds(o, async (mds) => {
          const info = await mds.getFsInfo(o.fs);
          const taking = o.progress && process.stderr.isTTY ? new SingleBar({ format: 'snapshot {value} records', stream: process.stderr }, Presets.shades_classic) : null;
          taking?.start(0, 0);
          const snap = await FsSnapshot.take(mds, info.fs_id, (n) => taking?.update(n));
          taking?.stop();
          try {
            const sink: Writable = file === '-' ? process.stdout : createWriteStream(file, { mode: 0o600 });
            const gzip = file.endsWith('.gz') ? createGzip() : null;
            if (gzip) gzip.pipe(sink);
            const out: Writable = gzip ?? sink;
            const write = async (line: DumpLine) => {
              if (!out.write(JSON.stringify(line) + '\n')) await once(out, 'drain');
            };
            const bar = o.progress && process.stderr.isTTY ? new SingleBar({ format: 'dump [{bar}] {value}/{total} inodes', stream: process.stderr }, Presets.shades_classic) : null;
            bar?.start(Math.max(1, Number(info.inode_count)), 0);
            const done = await dumpTree(snap, {
              type: 'header', version: 1, fs: info.name, fsId: info.fs_id, blockSize: Number(info.block_size), chunkSize: Number(info.chunk_size),
              bucket: info.s3?.bucket ?? '', keyPrefix: info.s3?.key_prefix ?? '', dumpedAt: new Date().toISOString(),
              copysets: snap.points.map((p) => ({ pool: p.pool, copyset: p.copyset, appliedIndex: p.appliedIndex, partitions: p.partitions })),
            }, write, (n) => bar?.update(n, { total: Math.max(n, Number(info.inode_count)) }));
            bar?.stop();
            if (file !== '-') {
              out.end();
              await once(sink, 'finish');
            }
            const at = snap.points.map((p) => `${p.pool}.${p.copyset}@${p.appliedIndex}`).join(' ');
            process.stderr.write(`dumped ${done.inodes} inodes, ${done.dentries} names of ${info.name}${file === '-' ? '' : ` to ${file}`} (copysets at raft index: ${at})\n`);
            if (done.skipped > 0) process.stderr.write(`left out ${done.skipped} names whose inode another copyset did not hold yet at its index (see tierfs dump in the README)\n`);
          } finally {
            await snap.close();
          }
        });
      }),
    );
}
