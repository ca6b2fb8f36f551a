// `tierfs down`: unmount (flushing what is staged) and stop every process `tierfs up` started.
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { loadState, saveState } from '../cluster-state.js';
import { stopPid, isAlive } from '../launcher.js';
import { ensureUnmounted } from '../cluster-ops.js';
import { action } from '../errors.js';
import { attachRecords, detachVolume } from './volume.js';

const ORDER = ['mount', 'cachenode', 'chunkserver', 'metaserver', 'mds', 's3'] as const;

export async function down(dataDirArg: string, say: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<void> {
  const dataDir = resolve(dataDirArg);
  const state = loadState(dataDir);
  if (!state) {
    say(`nothing to stop: no cluster in ${dataDir}`);
    return;
  }
  // Attached volumes first: their servers need the chunkservers to flush.
  for (const rec of attachRecords(dataDir)) await detachVolume(dataDir, rec, say);
  for (const role of ORDER) {
    const procs = state.processes.filter((p) => p.role === role);
    // The mount flushes staged data to S3 before it exits: give it time.
    const grace = role === 'mount' ? 120_000 : 15_000;
    await Promise.all(
      procs.map(async (p) => {
        if (!isAlive(p.pid)) return;
        const killed = await stopPid(p.pid, grace);
        say(`${p.name.padEnd(10)} stopped${killed ? ' (killed after the grace period)' : ''}`);
      }),
    );
    if (role === 'mount') await ensureUnmounted(state.mountpoint);
  }
  state.processes = [];
  saveState(dataDir, state);
}

export function register(program: Command): void {
  program
    .command('down')
    .description('unmount and stop the cluster started by tierfs up')
    .option('--data-dir <dir>', 'the data dir given to tierfs up', '.tierfs')
    .action(action(async (opts: { dataDir: string }) => down(opts.dataDir)));
}
