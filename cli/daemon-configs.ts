// The config schema of each daemon, for `tierfs config check` and the daemons' own loading.
// Each component adds its schema here when its daemon lands.
import type { z } from 'zod';
import { metaserverConfigSchema } from '../metaserver/config.js';
import { mdsConfigSchema } from '../mds/config.js';
import { chunkserverConfigSchema } from '../chunkserver/config.js';
import { cachenodeConfigSchema } from '../cachenode/config.js';

export const daemonConfigs: Record<string, z.ZodType> = { mds: mdsConfigSchema, metaserver: metaserverConfigSchema, chunkserver: chunkserverConfigSchema, cachenode: cachenodeConfigSchema };
