// `tierfs cachenode`: run a cache node (S3 blocks on local disk for every mount) in the foreground.
import type { Command } from 'commander';
import { loadConfig } from '../../common/config.js';
import { createLogger } from '../../common/log.js';
import { adoptDaemonClusterAuth } from '../../common/cluster-auth.js';
import { cachenodeConfigSchema } from '../../cachenode/config.js';
import { announceReady, stopOnSignals } from '../ready.js';
import { action } from '../errors.js';

interface CachenodeOptions {
  config?: string;
  listen?: string;
  dataDir?: string;
  mds?: string;
  set: string[];
}

export function register(program: Command): void {
  program
    .command('cachenode')
    .description('run a cache node: S3 blocks kept on local disk for every mount of the cluster (the cache group)')
    .option('--config <file>', 'YAML config file')
    .option('--listen <host:port>', 'gRPC listen address')
    .option('--data-dir <dir>', 'where blocks are kept')
    .option('--mds <addrs>', 'MDS addresses, host:port[,host:port...]')
    .option('--set <key=value...>', 'override a config key', [])
    .action(
      action(async (opts: CachenodeOptions) => {
        const config = loadConfig(cachenodeConfigSchema, {
          file: opts.config,
          flags: { listen: opts.listen, dataDir: opts.dataDir, mds: opts.mds },
          sets: opts.set,
        });
        const log = createLogger('cachenode');
        adoptDaemonClusterAuth(config, log);
        const { CacheNode } = await import('../../cachenode/server.js');
        const node = await CacheNode.start(config, log);
        stopOnSignals(() => node.close());
        log.info({ address: node.address, nodeId: node.nodeId }, 'cache node serving');
        announceReady({ address: node.address, metricsPort: node.metricsPort, nodeId: node.nodeId });
      }),
    );
}
