// Every subcommand's register function; add one line per new command file.
import type { Command } from 'commander';
import { register as s3server } from './s3server.js';
import { register as config } from './config.js';
import { register as mds } from './mds.js';

export const commands: Array<(program: Command) => void> = [s3server, config, mds];
