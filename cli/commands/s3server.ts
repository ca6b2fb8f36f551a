// `tierfs s3server`: run the embedded S3 server in the foreground.
import type { Command } from 'commander';
import { startEmbeddedS3 } from '../../s3adaptor/embedded-server.js';
import { announceReady, stopOnSignals } from '../ready.js';
import { action } from '../errors.js';

export function register(program: Command): void {
  program
    .command('s3server')
    .description('run the embedded S3 server (s3rver) in the foreground')
    .requiredOption('--dir <dir>', 'directory holding buckets and objects')
    .option('--host <host>', 'listen address', '127.0.0.1')
    .option('--port <port>', 'listen port (0 = any free port)', '0')
    .option('--bucket <name...>', 'buckets to create at start', [])
    .action(
      action(async (opts: { dir: string; host: string; port: string; bucket: string[] }) => {
        const s3 = await startEmbeddedS3({ dir: opts.dir, host: opts.host, port: Number(opts.port), buckets: opts.bucket });
        stopOnSignals(() => s3.close());
        announceReady({ endpoint: s3.endpoint, port: s3.port });
      }),
    );
}
