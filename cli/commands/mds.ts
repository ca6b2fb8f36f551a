// `tierfs mds`: run the MDS daemon in the foreground.
import type { Command } from 'commander';
import { loadConfig } from '../../common/config.js';
import { createLogger } from '../../common/log.js';
import { adoptDaemonClusterAuth } from '../../common/cluster-auth.js';
import { mdsConfigSchema } from '../../mds/config.js';
import { announceReady, stopOnSignals } from '../ready.js';
import { action } from '../errors.js';

interface MdsOptions {
  config?: string;
  listen?: string;
  dataDir?: string;
  etcd?: string;
  set: string[];
}

export function register(program: Command): void {
  program
    .command('mds')
    .description('run the MDS (metadata directory service: topology, filesystems, ids, scheduling)')
    .option('--config <file>', 'YAML config file')
    .option('--listen <host:port>', 'gRPC listen address')
    .option('--data-dir <dir>', 'directory of the embedded store (no etcd)')
    .option('--etcd <urls>', 'comma-separated etcd endpoints (enables HA)')
    .option('--set <key=value...>', 'override a config key', [])
    .action(
      action(async (opts: MdsOptions) => {
        const config = loadConfig(mdsConfigSchema, {
          file: opts.config,
          flags: { listen: opts.listen, dataDir: opts.dataDir, 'etcd.endpoints': opts.etcd },
          sets: opts.set,
        });
        const log = createLogger('mds');
        adoptDaemonClusterAuth(config, log);
        // Loaded here so other commands do not pay for etcd, level and the S3 SDK at startup.
        const { MdsNode } = await import('../../mds/server.js');
        const node = await MdsNode.start(config, log);
        stopOnSignals(() => node.close());
        // With etcd, wait a little for the first election so `leader` is meaningful; standbys are ready too.
        await node.waitLeading(config.etcd.endpoints.length > 0 ? 1000 : 10_000);
        log.info({ address: node.address, leader: node.isLeader() }, 'MDS serving');
        announceReady({ address: node.address, metricsPort: node.metricsPort, leader: node.isLeader() });
      }),
    );
}
