// `tierfs config check DAEMON --config FILE`: validate a daemon's config and print the effective values.
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { loadConfig, ConfigError } from '../../common/config.js';
import { daemonConfigs } from '../daemon-configs.js';
import { action } from '../errors.js';

export function register(program: Command): void {
  const config = program.command('config').description('inspect daemon configuration');
  config
    .command('check')
    .description('validate a config file (plus --set overrides) and print the effective configuration')
    .argument('<daemon>', `one of: ${Object.keys(daemonConfigs).join(', ') || '(none yet)'}`)
    .option('--config <file>', 'YAML config file')
    .option('--set <key=value...>', 'override a key', [])
    .action(
      action(async (daemon: string, opts: { config?: string; set: string[] }) => {
        const schema = daemonConfigs[daemon];
        if (!schema) throw new ConfigError([`daemon = ${JSON.stringify(daemon)}: expected one of ${Object.keys(daemonConfigs).join(', ')}`]);
        const effective = loadConfig(schema, { file: opts.config, sets: opts.set });
        process.stdout.write(stringify(effective));
      }),
    );
}
