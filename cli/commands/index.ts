// Every subcommand's register function; add one line per new command file.
import type { Command } from 'commander';
import { register as s3server } from './s3server.js';
import { register as config } from './config.js';
import { register as metaserver } from './metaserver.js';
import { register as sim } from './sim.js';
import { register as mds } from './mds.js';
import { register as fs } from './fs.js';
import { register as benchSuite } from './bench-suite.js';
import { register as mount } from './mount.js';
import { register as umount } from './umount.js';
import { register as cache } from './cache.js';
import { register as bench } from './bench.js';
import { register as benchS3adaptor } from './bench-s3adaptor.js';

export const commands: Array<(program: Command) => void> = [s3server, config, sim, benchSuite, mds, fs, metaserver, mount, umount, cache, bench, benchS3adaptor];
