#!/usr/bin/env node
// The `tierfs` command. Each subcommand lives in its own file under cli/commands/.
import { Command } from 'commander';
import { commands } from './commands/index.js';
import { addGlobalAuthOptions } from './cluster-auth.js';
import { TIERFS_VERSION } from '../common/version.js';
import { exitOnError } from './errors.js';

// We run on Node 20 by design; the SDK version is pinned in package-lock.json, so its
// notice about future releases needing Node 22 is noise in every daemon log.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
// Everything a tierfs process creates (data dirs, logs, configs, keys, caches) is its
// owner's alone: 0700 directories, 0600 files, whatever umask the shell had.
process.umask(0o077);

const program = new Command();
program.name('tierfs').description('tierfs: a distributed POSIX filesystem on object storage').version(TIERFS_VERSION);
program.showHelpAfterError();
addGlobalAuthOptions(program);
for (const register of commands) register(program);
await program.parseAsync(process.argv).catch(exitOnError);
