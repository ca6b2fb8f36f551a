// `tierfs bench-s3adaptor`: the data-path benchmark (temporary; bench-suite will include it).
import type { Command } from 'commander';
import { runS3adaptorBench } from '../../s3adaptor/bench.js';
import { action } from '../errors.js';

export function register(program: Command): void {
  program
    .command('bench-s3adaptor')
    .description('benchmark the S3 data path: staged writes, warm/cold reads, 4 KiB random reads vs local disk and raw S3')
    .option('--size-mib <n>', 'bytes moved per sequential case, in MiB', '1024')
    .option('--dir <dir>', 'directory for the disk cache and the local-disk baseline')
    .option('--endpoint <url>', 'use this S3 endpoint instead of an embedded s3rver')
    .option('--bucket <name>', 'bucket (created if missing)')
    .action(
      action(async (opts: { sizeMib: string; dir?: string; endpoint?: string; bucket?: string }) => {
        await runS3adaptorBench({ sizeMiB: Number(opts.sizeMib), dir: opts.dir, endpoint: opts.endpoint, bucket: opts.bucket });
      }),
    );
}
