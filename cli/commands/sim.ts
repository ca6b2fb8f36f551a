// `tierfs sim <component>`: runs deterministic simulator seeds; a failing seed replays with --from.
import type { Command } from 'commander';
import { runSeeds, type SeedResult } from '../../raft/sim/run.js';
import { runSeed as runRaftSeed } from '../../raft/sim/simulator.js';
import { runMetaSeed } from '../../metaserver/sim/simulator.js';
import { action } from '../errors.js';

const SIMULATORS: Record<string, (seed: number) => Promise<SeedResult & { summary: string }>> = {
  raft: async (seed) => {
    const r = await runRaftSeed(seed);
    return { ...r, summary: `${r.ops} ops (${r.unknownOps} unknown), ${r.ticks} ticks, ${r.crashes} crashes, ${r.diskFailures} disk failures, ${r.lostWrites} unsynced writes lost, ${r.partitions} partitions, ${r.confChanges} conf changes, ${r.messages} messages` };
  },
  metaserver: async (seed) => {
    const r = await runMetaSeed(seed);
    return { ...r, summary: `${r.ops} ops (${r.unknownOps} unknown), ${r.ticks} ticks, ${r.crashes} crashes, ${r.diskFailures} disk failures, ${r.lostWrites} unsynced writes lost, ${r.partitions} partitions, ${r.confChanges} conf changes` };
  },
};

export function register(program: Command): void {
  program
    .command('sim')
    .description(`run deterministic simulator seeds of a component (${Object.keys(SIMULATORS).join(', ')})`)
    .argument('<component>', `which simulator: ${Object.keys(SIMULATORS).join(', ')}`)
    .option('--seeds <n>', 'how many seeds to run', '100')
    .option('--from <seed>', 'first seed', '1')
    .option('--verbose', 'print one line per seed')
    .action(
      action(async (component: string, opts: { seeds: string; from: string; verbose?: boolean }) => {
        const sim = SIMULATORS[component];
        if (!sim) throw new Error(`unknown simulator "${component}" (known: ${Object.keys(SIMULATORS).join(', ')})`);
        const from = Number(opts.from);
        const count = Number(opts.seeds);
        const res = await runSeeds(sim, from, count, (r) => {
          if (!r.ok) process.stdout.write(`seed ${r.seed} FAILED: ${r.error} (replay: npm run sim -- ${component} --seeds 1 --from ${r.seed})\n`);
          else if (opts.verbose) process.stdout.write(`seed ${r.seed} ok: ${r.summary}\n`);
        });
        process.stdout.write(`${res.passed} passed, ${res.failed} failed\n`);
        if (res.failed > 0) process.exitCode = 1;
      }),
    );
}
