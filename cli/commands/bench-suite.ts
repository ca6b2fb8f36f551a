// `tierfs bench-suite <name>`: runs one component's benchmarks; each prints JSON lines.
import type { Command } from 'commander';
import { action } from '../errors.js';

interface SuiteOptions {
  sizeMib?: string;
  count?: string;
  concurrency?: string;
  rmCount?: string;
  trashDays?: string;
  modes?: string;
}

// Loaded on use, so one suite's dependencies never slow down (or break) another.
const suites: Record<string, (opts: SuiteOptions) => Promise<void>> = {
  raft: async () => (await import('../../raft/bench/raft-bench.js')).benchRaft(),
  s3adaptor: async (opts) => (await import('../../s3adaptor/bench.js')).runS3adaptorBench({ sizeMiB: opts.sizeMib ? Number(opts.sizeMib) : undefined }),
  metaserver: async (opts) => (await import('../../metaserver/bench.js')).runMetaserverBench({
    count: opts.count ? Number(opts.count) : undefined,
    concurrencies: opts.concurrency ? opts.concurrency.split(',').map(Number) : undefined,
  }),
  fuse: async () => (await import('../../fuse/bench.js')).runFuseBench(),
  volume: async () => (await import('../../blockclient/bench.js')).runVolumeBench(),
  namespace: async (opts) => (await import('../../gateway/bench.js')).runNamespaceBench({
    count: opts.count ? Number(opts.count) : undefined,
    rmCount: opts.rmCount ? Number(opts.rmCount) : undefined,
    trashDays: opts.trashDays ? opts.trashDays.split(',').map(Number) : undefined,
    modes: opts.modes ? (opts.modes.split(',') as Array<'sync' | 'async'>) : undefined,
  }),
  cachegroup: async (opts) => (await import('../../cachenode/bench.js')).runCachegroupBench({ sizeMiB: opts.sizeMib ? Number(opts.sizeMib) : undefined }),
};

export function register(program: Command): void {
  program
    .command('bench-suite')
    .description(`run a component benchmark (${Object.keys(suites).join(', ')})`)
    .argument('<name>', 'which benchmark suite')
    .option('--size-mib <MiB>', 'data size for the s3adaptor and cachegroup suites (default 1024)')
    .option('--count <n>', 'entries per case for the metaserver suite (default 10000) and the namespace suite (default 2000)')
    .option('--rm-count <n>', 'files of the namespace suite\'s rm -rf (default 10000)')
    .option('--modes <list>', 'mounts of the namespace suite: sync (the default mount), async (--async-unlink); default both')
    .option('--trash-days <list>', 'recycle-bin days of the namespace suite\'s filesystems (default 1,0)')
    .option('--concurrency <list>', 'concurrencies for the metaserver suite (default 1,64)')
    .action(
      action(async (name: string, opts: SuiteOptions) => {
        const run = Object.hasOwn(suites, name) ? suites[name] : undefined;
        if (!run) {
          // A usage mistake: one line and exit code 2, no stack trace.
          process.stderr.write(`tierfs: unknown bench suite "${name}" (known: ${Object.keys(suites).join(', ')})\n`);
          process.exit(2);
        }
        if (opts.count !== undefined && !(Number.isInteger(Number(opts.count)) && Number(opts.count) >= 1)) {
          process.stderr.write(`tierfs: --count ${opts.count}: must be a whole number >= 1\n`);
          process.exit(2);
        }
        if (opts.rmCount !== undefined && !(Number.isInteger(Number(opts.rmCount)) && Number(opts.rmCount) >= 10)) {
          process.stderr.write(`tierfs: --rm-count ${opts.rmCount}: must be a whole number >= 10\n`);
          process.exit(2);
        }
        if (opts.trashDays !== undefined && !opts.trashDays.split(',').every((x) => x !== '' && Number(x) >= 0)) {
          process.stderr.write(`tierfs: --trash-days ${opts.trashDays}: must be numbers >= 0, comma-separated\n`);
          process.exit(2);
        }
        if (opts.modes !== undefined && !opts.modes.split(',').every((m) => m === 'sync' || m === 'async')) {
          process.stderr.write(`tierfs: --modes ${opts.modes}: must be sync and/or async, comma-separated\n`);
          process.exit(2);
        }
        if (opts.concurrency !== undefined && !opts.concurrency.split(',').every((x) => Number.isInteger(Number(x)) && Number(x) >= 1)) {
          process.stderr.write(`tierfs: --concurrency ${opts.concurrency}: must be whole numbers >= 1, comma-separated\n`);
          process.exit(2);
        }
        await run(opts);
      }),
    );
}
