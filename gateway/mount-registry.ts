// Where a running mount can be found: each mount writes {mountpoint, pid, adminSocket} to a
// file named after its mountpoint in the runtime dir, so `tierfs umount M` and
// `tierfs cache stats --mount M` reach its admin socket.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';

export interface MountRecord {
  mountpoint: string;
  pid: number;
  adminSocket: string;
  fs?: string;
}

export function runtimeDir(): string {
  return process.env.TIERFS_RUN_DIR ?? join(tmpdir(), `tierfs-run-${process.getuid?.() ?? 0}`);
}

/**
 * The mountpoint with its parent's symlinks resolved. It never touches the mountpoint itself:
 * a stat of a hung FUSE mount hangs, and the mount process must never call into its own
 * mount synchronously (that deadlocks: the answer needs the blocked event loop).
 */
export function canonicalMountpoint(mountpoint: string): string {
  const abs = resolve(mountpoint);
  try {
    return join(realpathSync(dirname(abs)), basename(abs));
  } catch {
    return abs;
  }
}

function recordPath(mountpoint: string): string {
  const id = createHash('sha256').update(canonicalMountpoint(mountpoint)).digest('hex').slice(0, 16);
  return join(runtimeDir(), `mount-${id}.json`);
}

export function writeMountRecord(rec: MountRecord): void {
  mkdirSync(runtimeDir(), { recursive: true, mode: 0o700 });
  writeFileSync(recordPath(rec.mountpoint), JSON.stringify(rec) + '\n', { mode: 0o600 });
}

export function readMountRecord(mountpoint: string): MountRecord | null {
  try {
    return JSON.parse(readFileSync(recordPath(mountpoint), 'utf8')) as MountRecord;
  } catch {
    return null;
  }
}

export function removeMountRecord(mountpoint: string): void {
  rmSync(recordPath(mountpoint), { force: true });
}

/** True while the process runs; an exited process its parent has not reaped yet (zombie) counts as gone. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export function isMountedAt(mountpoint: string): boolean {
  const target = resolve(mountpoint);
  try {
    return readFileSync('/proc/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === target);
  } catch {
    return false;
  }
}
