// `tierfs chunkserver --config FILE`: run a chunkserver in the foreground.
import type { Command } from 'commander';
import { loadConfig } from '../../common/config.js';
import { createLogger } from '../../common/log.js';
import { adoptDaemonClusterAuth } from '../../common/cluster-auth.js';
import { chunkserverConfigSchema } from '../../chunkserver/config.js';
import { startChunkServer } from '../../chunkserver/daemon.js';
import { announceReady, stopOnSignals } from '../ready.js';
import { action } from '../errors.js';

export function register(program: Command): void {
  program
    .command('chunkserver')
    .description('run a chunkserver (chunk files of block volumes in copysets over Raft)')
    .option('--config <file>', 'YAML config file')
    .option('--data-dir <dir>', 'data directory (dataDir)')
    .option('--listen <host:port>', 'gRPC address, also the raft id (listen)')
    .option('--mds <addresses>', 'comma-separated MDS addresses (mds)')
    .option('--set <key=value...>', 'override a config key', [])
    .action(
      action(async (opts: { config?: string; dataDir?: string; listen?: string; mds?: string; set: string[] }) => {
        const cfg = loadConfig(chunkserverConfigSchema, { file: opts.config, flags: { dataDir: opts.dataDir, listen: opts.listen, mds: opts.mds }, sets: opts.set });
        const logger = createLogger('chunkserver');
        adoptDaemonClusterAuth(cfg, logger);
        const cs = await startChunkServer(cfg, logger);
        stopOnSignals(() => cs.close());
        announceReady({ address: cs.address, metricsPort: cs.metricsPort });
      }),
    );
}
