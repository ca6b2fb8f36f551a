// Small operations `up`, `down` and tests share: free ports, stale mounts, polling.
import { createServer } from 'node:net';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export function isMounted(path: string): boolean {
  try {
    return readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .some((line) => line.split(' ')[1] === path);
  } catch {
    return false;
  }
}

/** Lazily unmounts a stale FUSE mount left by a crashed gateway ("transport endpoint is not connected"). */
export async function ensureUnmounted(path: string): Promise<void> {
  if (!isMounted(path)) return;
  try {
    execFileSync('umount', ['-l', path], { stdio: 'ignore' });
  } catch {
    /* reported below */
  }
  if (isMounted(path)) throw new Error(`${path} is still mounted; unmount it by hand (umount -l ${path})`);
}

export async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < until) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}
