// `tierfs bench-suite <name>`: runs one component's benchmarks; each prints JSON lines.
import type { Command } from 'commander';
import { benchRaft } from '../../raft/bench/raft-bench.js';
import { action } from '../errors.js';

const suites: Record<string, () => Promise<void>> = {
  raft: benchRaft,
};

export function register(program: Command): void {
  program
    .command('bench-suite')
    .description(`run a component benchmark (${Object.keys(suites).join(', ')})`)
    .argument('<name>', 'which benchmark suite')
    .action(
      action(async (name: string) => {
        const run = suites[name];
        if (!run) throw new Error(`unknown bench suite "${name}" (known: ${Object.keys(suites).join(', ')})`);
        await run();
      }),
    );
}
