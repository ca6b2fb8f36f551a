// `tierfs metaserver --config FILE`: run a metaserver in the foreground.
import type { Command } from 'commander';
import { loadConfig } from '../../common/config.js';
import { createLogger } from '../../common/log.js';
import { adoptDaemonClusterAuth } from '../../common/cluster-auth.js';
import { metaserverConfigSchema } from '../../metaserver/config.js';
import { startMetaServer } from '../../metaserver/daemon.js';
import { RaftHost } from '../../raft/index.js';
import { announceReady, stopOnSignals } from '../ready.js';
import { action } from '../errors.js';

export function register(program: Command): void {
  program
    .command('metaserver')
    .description('run a metaserver (copysets of inode and dentry partitions over Raft)')
    .option('--config <file>', 'YAML config file')
    .option('--data-dir <dir>', 'data directory (dataDir)')
    .option('--listen <host:port>', 'gRPC address, also the raft id (listen)')
    .option('--mds <addresses>', 'comma-separated MDS addresses (mds)')
    .option('--set <key=value...>', 'override a config key', [])
    .action(
      action(async (opts: { config?: string; dataDir?: string; listen?: string; mds?: string; set: string[] }) => {
        const cfg = loadConfig(metaserverConfigSchema, {
          file: opts.config,
          flags: { dataDir: opts.dataDir, listen: opts.listen, mds: opts.mds },
          sets: opts.set,
        });
        const logger = createLogger('metaserver');
        adoptDaemonClusterAuth(cfg, logger);
        const ms = await startMetaServer(cfg, { logger, openRaftHost: (o) => RaftHost.open(o) });
        stopOnSignals(() => ms.close());
        announceReady({ address: ms.address, metricsPort: ms.metricsPort });
      }),
    );
}
