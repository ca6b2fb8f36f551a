// Mounting and unmounting with the system's mount(8)/umount(8), and the fusectl handle of a
// connection (/sys/fs/fuse/connections/N) for aborting it.
//
// A root mount needs no native code: open /dev/fuse, then run
//   mount -i -t fuse.<subtype> -o fd=3,rootmode=40000,user_id=U,group_id=G[,...] <fsname> <mountpoint>
// with the descriptor inherited as the child's fd 3. `-i` keeps mount(8) from looking for a
// mount.fuse helper. The kernel queues FUSE_INIT at mount(2); our readers are already
// waiting on the device, so whatever mount(8) does afterwards cannot deadlock on us.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { EBUSY, EPERM } from './abi.js';
import { fusermountUnmount } from './fusermount.js';

export interface KernelMountOptions {
  fsname: string;
  subtype: string;
  allowOther?: boolean;
  defaultPermissions?: boolean;
  readOnly?: boolean;
}

interface RunResult {
  code: number;
  stderr: string;
}

function run(cmd: string, args: string[], extraFd?: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const stdio: (string | number)[] = ['ignore', 'ignore', 'pipe'];
    if (extraFd !== undefined) stdio.push(extraFd);
    const child = spawn(cmd, args, { stdio: stdio as ('ignore' | 'pipe' | number)[] });
    let stderr = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stderr: stderr.trim() }));
  });
}

function fsError(errno: number, code: string, message: string): Error {
  return Object.assign(new Error(message), { errno, code });
}

/** A mount option value may not carry the separators of the -o list. */
function checkOptionValue(what: string, v: string): void {
  if (v === '' || /[,\s=]/.test(v)) throw new Error(`fuse mount: ${what} "${v}" must be non-empty without commas, '=' or spaces`);
}

export function mountOptionString(opts: KernelMountOptions, uid: number, gid: number): string {
  const o = ['fd=3', 'rootmode=40000', `user_id=${uid}`, `group_id=${gid}`];
  if (opts.allowOther) o.push('allow_other');
  if (opts.defaultPermissions ?? true) o.push('default_permissions');
  if (opts.readOnly) o.push('ro');
  return o.join(',');
}

/** Mounts the connection behind fd at mountpoint (root only). */
export async function kernelMount(fd: number, mountpoint: string, opts: KernelMountOptions): Promise<void> {
  const uid = process.getuid?.() ?? -1;
  if (uid !== 0) {
    throw fsError(
      EPERM,
      'EPERM',
      'fuse mount: mounting needs root; as another user, start the program through fusermount3 ' +
        '(fusermountCommand() in fuse/fusermount.ts; `tierfs mount` does this by itself)',
    );
  }
  checkOptionValue('subtype', opts.subtype);
  if (/\s/.test(opts.fsname) || opts.fsname === '') throw new Error(`fuse mount: fsname "${opts.fsname}" must be non-empty without spaces`);
  if (!statSync(mountpoint).isDirectory()) throw fsError(20, 'ENOTDIR', `fuse mount: ${mountpoint} is not a directory`);
  const gid = process.getgid?.() ?? 0;
  const args = ['-i', '-t', `fuse.${opts.subtype}`, '-o', mountOptionString(opts, uid, gid), opts.fsname, mountpoint];
  const r = await run('mount', args, fd);
  if (r.code !== 0) throw fsError(EPERM, 'EMOUNT', `fuse mount: mount ${args.join(' ')} failed (exit ${r.code}): ${r.stderr}`);
}

/**
 * umount(8), or `fusermount3 -u` when not root; lazy = `umount -l` / `fusermount3 -uz`.
 * Rejects with EBUSY when the mount is busy and not lazy.
 */
export async function kernelUnmount(mountpoint: string, lazy: boolean): Promise<void> {
  const r = process.getuid?.() === 0
    ? await run('umount', lazy ? ['-l', mountpoint] : [mountpoint])
    : await fusermountUnmount(mountpoint, lazy);
  if (r.code === 0) return;
  if (/busy/i.test(r.stderr)) throw fsError(EBUSY, 'EBUSY', `fuse unmount: ${mountpoint} is busy: ${r.stderr}`);
  if (/not mounted|no mount point|not found in/i.test(r.stderr)) return;
  throw fsError(EPERM, 'EUMOUNT', `fuse unmount: umount ${mountpoint} failed (exit ${r.code}): ${r.stderr}`);
}

/** Decodes the octal escapes (\\040 for a space) of /proc/self/mountinfo. */
function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * The fusectl name of the connection mounted at mountpoint: the kernel's dev_t of the
 * superblock (major << 20 | minor). Read from /proc/self/mountinfo, not stat(2), because a
 * stat of the mount would be a request to ourselves (a deadlock from the main thread).
 * Returns undefined when nothing is mounted there.
 */
export function connectionId(mountpoint: string): number | undefined {
  let found: number | undefined;
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f.length < 5 || unescapeMountinfo(f[4]!) !== mountpoint) continue;
    const [major, minor] = f[2]!.split(':').map(Number) as [number, number];
    found = major * 1048576 + minor; // the last one is the top of the stack
  }
  return found;
}

export const FUSECTL = '/sys/fs/fuse/connections';

/** Mounts fusectl at /sys/fs/fuse/connections if it is not there (root only). */
export async function ensureFusectl(): Promise<void> {
  if (!existsSync(FUSECTL)) return;
  if (readdirSync(FUSECTL).length > 0) return;
  const r = await run('mount', ['-t', 'fusectl', 'fusectl', FUSECTL]);
  if (r.code !== 0 && !/already mounted|busy/i.test(r.stderr)) throw new Error(`fuse: cannot mount fusectl: ${r.stderr}`);
}

/** Aborts a connection: every pending and future request fails, the device reads ENODEV. */
export async function abortConnection(id: number): Promise<void> {
  await ensureFusectl();
  writeFileSync(`${FUSECTL}/${id}/abort`, '1');
}

/**
 * Raises the mount's readahead window. The kernel offers at INIT only its bdi default
 * (128 KiB) and takes the smaller of that and our answer, so a larger window is set on the
 * mount's bdi (/sys/class/bdi/MAJOR:MINOR/read_ahead_kb) afterwards. Returns the bytes in force.
 */
export function setReadahead(id: number, bytes: number): number {
  const path = `/sys/class/bdi/${Math.floor(id / 1048576)}:${id % 1048576}/read_ahead_kb`;
  writeFileSync(path, String(Math.floor(bytes / 1024)));
  return Number(readFileSync(path, 'utf8').trim()) * 1024;
}
