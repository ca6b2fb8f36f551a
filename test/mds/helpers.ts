// Shared helpers of the MDS tests: spawning MDS daemons and polling for conditions.
import { join } from 'node:path';
import { spawnDaemon, type Spawned } from '../support/process.js';
import { TierfsError } from '../../common/status.js';

export interface MdsReady {
  address: string;
  metricsPort: number;
  leader: boolean;
}

export function spawnMds(args: string[], logDir: string, name = 'mds'): Promise<Spawned<MdsReady>> {
  return spawnDaemon<MdsReady>(['mds', ...args], { logFile: join(logDir, `${name}.log`), readyTimeoutMs: 30_000 });
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < until) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

export function isCode(code: string, message?: RegExp) {
  return (err: unknown): boolean => {
    if (!(err instanceof TierfsError)) throw new Error(`expected TierfsError ${code}, got ${String(err)}`);
    if (err.code !== code) throw new Error(`expected ${code}, got ${err.code}: ${err.message}`);
    if (message && !message.test(err.message)) throw new Error(`message ${JSON.stringify(err.message)} does not match ${message}`);
    return true;
  };
}
