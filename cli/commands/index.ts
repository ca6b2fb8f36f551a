// Every subcommand's register function; add one line per new command file.
import type { Command } from 'commander';
import { register as s3server } from './s3server.js';
import { register as config } from './config.js';

export const commands: Array<(program: Command) => void> = [s3server, config];
import { register as benchS3adaptor } from './bench-s3adaptor.js'; commands.push(benchS3adaptor); // temporary: bench-suite will run it
