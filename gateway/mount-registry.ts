// Where a running mount can be found: each mount writes {mountpoint, pid, adminSocket} to a
// file named after its mountpoint in the runtime dir, so `tierfs umount M` and
// `tierfs cache stats --mount M` reach its admin socket.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export interface MountRecord {
  mountpoint: string;
  pid: number;
  adminSocket: string;
  fs?: string;
}

export function runtimeDir(): string {
  return process.env.TIERFS_RUN_DIR ?? join(tmpdir(), `tierfs-run-${process.getuid?.() ?? 0}`);
}

export function canonicalMountpoint(mountpoint: string): string {
  try {
    return realpathSync(mountpoint);
  } catch {
    return resolve(mountpoint); // a dead FUSE mount cannot be resolved; its path still names it
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

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
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
