// `tierfs umount MOUNTPOINT`: asks the mount to flush, deregister and unmount through its
// admin socket and waits for it to exit; falls back to umount(8) when the mount is gone.
import { execFileSync } from 'node:child_process';
import type { Command } from 'commander';
import { StatusCode, TierfsError } from '../../common/status.js';
import { adminRequest } from '../../gateway/admin.js';
import { canonicalMountpoint, isMountedAt, pidAlive, readMountRecord, removeMountRecord } from '../../gateway/mount-registry.js';
import { action } from '../errors.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function umount(mountpoint: string, lazy: boolean): void {
  execFileSync('umount', lazy ? ['-l', mountpoint] : [mountpoint], { stdio: ['ignore', 'ignore', 'pipe'] });
}

export function register(program: Command): void {
  program
    .command('umount')
    .description('flush and unmount a tierfs mount')
    .argument('<mountpoint>')
    .option('--timeout <s>', 'how long to wait for the mount to flush and exit', '120')
    .option('--force', 'if the mount does not exit in time, unmount lazily (umount -l) and kill it')
    .action(
      action(async (mountpoint: string, opts: { timeout: string; force?: boolean }) => {
        const mnt = canonicalMountpoint(mountpoint);
        const rec = readMountRecord(mnt);
        const deadline = Date.now() + Number(opts.timeout) * 1000;
        if (!rec && !isMountedAt(mnt)) throw new TierfsError(StatusCode.NOT_FOUND, `nothing is mounted at ${mnt}`);
        if (rec && pidAlive(rec.pid)) {
          try {
            await adminRequest(rec.adminSocket, 'umount', 10_000);
          } catch (err) {
            process.stderr.write(`tierfs: ${err instanceof Error ? err.message : String(err)}; sending SIGTERM to ${rec.pid}\n`);
            process.kill(rec.pid, 'SIGTERM');
          }
          while (pidAlive(rec.pid) && Date.now() < deadline) await sleep(100);
          if (pidAlive(rec.pid)) {
            if (!opts.force) throw new TierfsError(StatusCode.TIMEOUT, `the mount (pid ${rec.pid}) is still flushing after ${opts.timeout} s; retry, or use --force`);
            process.kill(rec.pid, 'SIGKILL');
          }
        }
        removeMountRecord(mnt);
        if (isMountedAt(mnt)) {
          try {
            umount(mnt, false);
          } catch {
            umount(mnt, true);
          }
        }
        process.stdout.write(`unmounted ${mnt}\n`);
      }),
    );
}
