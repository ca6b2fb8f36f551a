// Shared helpers of the MDS tests: spawning MDS daemons and polling for conditions.
import { join } from 'node:path';
import { spawnDaemon, type Spawned } from '../support/process.js';
import { TierfsError } from '../../common/status.js';
export { waitFor } from '../support/wait.js';

export interface MdsReady {
  address: string;
  metricsPort: number;
  leader: boolean;
}

export function spawnMds(args: string[], logDir: string, name = 'mds'): Promise<Spawned<MdsReady>> {
  return spawnDaemon<MdsReady>(['mds', ...args], { logFile: join(logDir, `${name}.log`), readyTimeoutMs: 30_000 });
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes. */

export function isCode(code: string, message?: RegExp) {
  return (err: unknown): boolean => {
    if (!(err instanceof TierfsError)) throw new Error(`expected TierfsError ${code}, got ${String(err)}`);
    if (err.code !== code) throw new Error(`expected ${code}, got ${err.code}: ${err.message}`);
    if (message && !message.test(err.message)) throw new Error(`message ${JSON.stringify(err.message)} does not match ${message}`);
    return true;
  };
}
