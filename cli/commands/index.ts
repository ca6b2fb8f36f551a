// Every subcommand's register function; add one line per new command file.
import type { Command } from 'commander';
import { register as s3server } from './s3server.js';
import { register as config } from './config.js';
import { register as metaserver } from './metaserver.js';
import { register as sim } from './sim.js';
import { register as mds } from './mds.js';
import { register as fs } from './fs.js';
import { register as benchSuite } from './bench-suite.js';

export const commands: Array<(program: Command) => void> = [s3server, config, sim, benchSuite, mds, fs, metaserver];
