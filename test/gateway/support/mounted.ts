// Starts the in-memory gateway on a real FUSE mount in a child process, and always cleans up:
// SIGTERM (the gateway unmounts itself), then `umount -l` if the mount is still there.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnProcess, type Spawned } from '../../support/process.js';
import { tempDir } from '../../support/tmp.js';

const entry = join(dirname(fileURLToPath(import.meta.url)), 'memory-mount.js');

export interface TestMount {
  mountpoint: string;
  adminSocket: string;
  dir: string;
  proc: Spawned<{ mountpoint: string; pid: number; adminSocket: string }>;
  /** Stops the gateway and makes sure nothing stays mounted. */
  stop(): Promise<void>;
}

export function isMounted(mountpoint: string): boolean {
  return readFileSync('/proc/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === mountpoint);
}

export function forceUnmount(mountpoint: string): void {
  if (!isMounted(mountpoint)) return;
  try {
    execFileSync('umount', ['-l', mountpoint], { stdio: 'ignore' });
  } catch {
    /* best effort: nothing else we can do */
  }
}

export async function startMemoryMount(attrTimeoutSec = 1, env: NodeJS.ProcessEnv = {}): Promise<TestMount> {
  const tmp = tempDir('tierfs-gw-');
  const mountpoint = join(tmp.path, 'mnt');
  const adminSocket = join(tmp.path, 'admin.sock');
  mkdirSync(mountpoint);
  const proc = await spawnProcess<{ mountpoint: string; pid: number; adminSocket: string }>(
    process.execPath,
    [entry, mountpoint, adminSocket, String(attrTimeoutSec)],
    { logFile: join(tmp.path, 'gateway.log'), readyTimeoutMs: 30_000, env: { TIERFS_RUN_DIR: join(tmp.path, 'run'), ...env } },
  ).catch((err: unknown) => {
    forceUnmount(mountpoint);
    throw err;
  });
  return {
    mountpoint,
    adminSocket,
    dir: tmp.path,
    proc,
    stop: async () => {
      await proc.stop(15_000).catch(() => {});
      forceUnmount(mountpoint);
      // A lazily unmounted dir may still be busy for a moment; tmp removal is best effort.
      if (isMounted(mountpoint)) return; // never recurse into a live mount
      try {
        tmp.remove();
      } catch {
        /* leave it */
      }
    },
  };
}
