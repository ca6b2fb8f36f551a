// `tierfs load --fs NEW FILE`: rebuilds a dump (tierfs dump) in an empty filesystem on the same
// bucket and key prefix; the files read the dumped filesystem's objects, nothing is copied.
// Streamed line by line (gzip detected), with a progress bar on stderr.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { SingleBar, Presets } from 'cli-progress';
import type { Command } from 'commander';
import { StatusCode, TierfsError } from '../../common/status.js';
import type { MdsClient } from '../../mds/client.js';
import { TreeLoader, type DumpLine } from '../../metaserver/dump.js';
import { action } from '../errors.js';
import { clusterOptions, withFsMeta, type ClusterOpts } from '../fs-meta.js';

async function opened(file: string): Promise<Readable> {
  const raw = file === '-' ? process.stdin : createReadStream(file);
  if (file === '-') return raw;
  const head = await new Promise<Buffer>((resolve, reject) => {
    const s = createReadStream(file, { start: 0, end: 1 });
    const parts: Buffer[] = [];
    s.on('data', (b) => parts.push(b as Buffer)).on('end', () => resolve(Buffer.concat(parts))).on('error', reject);
  });
  return head[0] === 0x1f && head[1] === 0x8b ? raw.pipe(createGunzip()) : raw;
}

/**
 * The copy reads the source's objects, and nothing keeps the source from deleting them: say
 * so while the source still exists (the usual case of a restore is a source that is gone).
 */
async function warnIfSourceLives(mds: MdsClient, name: string, fsId: number): Promise<void> {
  const source = await mds.getFsInfo(fsId).catch((err: unknown) => {
    if (err instanceof TierfsError && err.code === StatusCode.NOT_FOUND) return null;
    throw err;
  });
  if (!source) return;
  process.stderr.write(
    `warning: ${name}, the filesystem this dump was taken from, still exists on this bucket. The loaded files read its objects: ` +
      `a file deleted or overwritten in ${name} loses its data in the copy too (delete nothing in ${name} while the copy is used, or copy the data instead)\n`,
  );
}

export function register(program: Command): void {
  clusterOptions(program.command('load').description('restore a metadata dump into an empty filesystem on the same bucket (objects shared)'))
    .requiredOption('--fs <name>', 'the empty filesystem to load into')
    .argument('<file>', 'a file written by tierfs dump (- for stdin)')
    .option('--no-progress', 'no progress bar')
    .action(
      action(async (file: string, o: ClusterOpts & { fs: string; progress: boolean }) => {
        await withFsMeta(o, o.fs, async (meta, info, mds) => {
          await TreeLoader.checkEmpty(meta);
          const loader = new TreeLoader(meta);
          const bar = o.progress && process.stderr.isTTY ? new SingleBar({ format: 'load [{bar}] {value} inodes', stream: process.stderr }, Presets.shades_classic) : null;
          bar?.start(0, 0);
          let n = 0;
          for await (const text of createInterface({ input: await opened(file), crlfDelay: Infinity })) {
            if (text.trim() === '') continue;
            let line: DumpLine;
            try {
              line = JSON.parse(text) as DumpLine;
            } catch {
              throw new TierfsError(StatusCode.INVALID_ARGUMENT, `line ${n + 1} of ${file} is not JSON`);
            }
            await loader.line(line);
            if (line.type === 'header') {
              const same = line.bucket === (info.s3?.bucket ?? '') && line.keyPrefix === (info.s3?.key_prefix ?? '');
              if (!same) throw new TierfsError(StatusCode.INVALID_ARGUMENT, `the dump's objects are in bucket ${line.bucket} prefix "${line.keyPrefix}"; ${o.fs} uses ${info.s3?.bucket} prefix "${info.s3?.key_prefix}": load needs the same bucket and key prefix`);
              if (line.blockSize !== Number(info.block_size) || line.chunkSize !== Number(info.chunk_size)) {
                throw new TierfsError(StatusCode.INVALID_ARGUMENT, `block/chunk size ${line.blockSize}/${line.chunkSize} of the dump differ from ${o.fs}'s ${info.block_size}/${info.chunk_size}`);
              }
              await warnIfSourceLives(mds, line.fs, line.fsId);
            }
            if (++n % 100 === 0) bar?.setTotal(n), bar?.update(loader.inodes);
          }
          await loader.finish();
          bar?.stop();
          process.stderr.write(`loaded ${loader.inodes} inodes, ${loader.dentries} names into ${o.fs}\n`);
        });
      }),
    );
}
