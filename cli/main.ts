#!/usr/bin/env node
// The `tierfs` command. Each subcommand lives in its own file under cli/commands/.
import { Command } from 'commander';
import { commands } from './commands/index.js';

const program = new Command();
program.name('tierfs').description('tierfs: a distributed POSIX filesystem on object storage').version('0.1.0');
program.showHelpAfterError();
for (const register of commands) register(program);
await program.parseAsync(process.argv);
