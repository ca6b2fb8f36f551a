// `tierfs sim <component>`: runs deterministic simulator seeds; a failing seed replays with --from.
import type { Command } from 'commander';
import { runSeeds } from '../../raft/sim/run.js';
import { action } from '../errors.js';

export function register(program: Command): void {
  program
    .command('sim')
    .description('run deterministic simulator seeds of a component (raft)')
    .argument('<component>', 'which simulator: raft')
    .option('--seeds <n>', 'how many seeds to run', '100')
    .option('--from <seed>', 'first seed', '1')
    .option('--verbose', 'print one line per seed')
    .action(
      action(async (component: string, opts: { seeds: string; from: string; verbose?: boolean }) => {
        if (component !== 'raft') throw new Error(`unknown simulator "${component}" (known: raft)`);
        const from = Number(opts.from);
        const count = Number(opts.seeds);
        const res = runSeeds(from, count, {}, (r) => {
          if (!r.ok) process.stdout.write(`seed ${r.seed} FAILED: ${r.error} (replay: npm run sim -- raft --seeds 1 --from ${r.seed})\n`);
          else if (opts.verbose) process.stdout.write(`seed ${r.seed} ok: ${r.ops} ops (${r.unknownOps} unknown), ${r.ticks} ticks, ${r.crashes} crashes, ${r.partitions} partitions, ${r.confChanges} conf changes, ${r.leaderChanges} terms with leaders\n`);
        });
        process.stdout.write(`${res.passed} passed, ${res.failed} failed\n`);
        if (res.failed > 0) process.exitCode = 1;
      }),
    );
}
