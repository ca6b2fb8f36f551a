// Every subcommand's register function; add one line per new command file.
import type { Command } from 'commander';
import { register as s3serverCommand } from './s3server.js';
import { register as configCommand } from './config.js';
import { register as benchCommand } from './bench.js';
import { register as benchS3AdaptorCommand } from './bench-s3adaptor.js';
import { register as benchSuiteCommand } from './bench-suite.js';
import { register as cacheCommand } from './cache.js';
import { register as chunkserverCommand } from './chunkserver.js';
import { register as cachenodeCommand } from './cachenode.js';
import { register as dashboardCommand } from './dashboard.js';
import { register as downCommand } from './down.js';
import { register as dumpCommand } from './dump.js';
import { register as fsCommand } from './fs.js';
import { register as fsckCommand } from './fsck.js';
import { register as infoCommand } from './info.js';
import { register as loadCommand } from './load.js';
import { register as mdsCommand } from './mds.js';
import { register as metaserverCommand } from './metaserver.js';
import { register as mountCommand } from './mount.js';
import { register as quotaCommand } from './quota.js';
import { register as simCommand } from './sim.js';
import { register as statsCommand } from './stats.js';
import { register as statusCommand } from './status.js';
import { register as summaryCommand } from './summary.js';
import { register as trashCommand } from './trash.js';
import { register as umountCommand } from './umount.js';
import { register as upCommand } from './up.js';
import { register as volumeCommand } from './volume.js';

export const commands: Array<(program: Command) => void> = [
  s3serverCommand,
  configCommand,
  benchCommand,
  benchS3AdaptorCommand,
  benchSuiteCommand,
  cacheCommand,
  chunkserverCommand,
  cachenodeCommand,
  dashboardCommand,
  downCommand,
  dumpCommand,
  fsCommand,
  fsckCommand,
  infoCommand,
  loadCommand,
  mdsCommand,
  metaserverCommand,
  mountCommand,
  quotaCommand,
  simCommand,
  statsCommand,
  statusCommand,
  summaryCommand,
  trashCommand,
  umountCommand,
  upCommand,
  volumeCommand,
];
