// `tierfs bench-suite <name>`: runs one component's benchmarks; each prints JSON lines.
import type { Command } from 'commander';
import { runFuseBench } from '../../fuse/bench.js';
import { benchRaft } from '../../raft/bench/raft-bench.js';
import { runS3adaptorBench } from '../../s3adaptor/bench.js';
import { action } from '../errors.js';

interface SuiteOptions {
  sizeMib?: string;
}

const suites: Record<string, (opts: SuiteOptions) => Promise<void>> = {
  raft: () => benchRaft(),
  s3adaptor: (opts) => runS3adaptorBench({ sizeMiB: opts.sizeMib ? Number(opts.sizeMib) : undefined }),
  fuse: () => runFuseBench(),
};

export function register(program: Command): void {
  program
    .command('bench-suite')
    .description(`run a component benchmark (${Object.keys(suites).join(', ')})`)
    .argument('<name>', 'which benchmark suite')
    .option('--size-mib <MiB>', 'data size for the s3adaptor suite (default 1024)')
    .action(
      action(async (name: string, opts: SuiteOptions) => {
        const run = suites[name];
        if (!run) throw new Error(`unknown bench suite "${name}" (known: ${Object.keys(suites).join(', ')})`);
        await run(opts);
      }),
    );
}
