// Unprivileged mounts through fusermount3 (Debian package fuse3), without native code.
//
// fusermount3 (setuid root) opens /dev/fuse, mounts it and hands the descriptor back over the
// unix socket named by $_FUSE_COMMFD (SCM_RIGHTS). Node cannot receive a descriptor that way,
// and a descriptor can only enter a process by open, recvmsg or inheritance; opening
// /dev/fuse again would be a new, unmounted connection. So a few lines of python3 receive it
// (socket.recv_fds) and exec the real program with it inherited, named by FUSE_DEVICE_FD and
// FUSE_MOUNTPOINT; mountFuse() then serves that descriptor instead of mounting.
import { spawn } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { KernelMountOptions } from './mount.js';

const SCRIPT = `
import os, socket, subprocess, sys
mountpoint, options, command = sys.argv[1], sys.argv[2], sys.argv[3:]
# Resolved now: once mounted, a stat of the mountpoint waits for a server that is not running yet.
canonical = os.path.realpath(mountpoint)
ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
env = dict(os.environ, _FUSE_COMMFD=str(theirs.fileno()))
r = subprocess.run(['fusermount3', '-o', options, '--', mountpoint], env=env, pass_fds=[theirs.fileno()])
theirs.close()
if r.returncode != 0:
    sys.exit(r.returncode)
ours.settimeout(30)
_msg, fds, _flags, _addr = socket.recv_fds(ours, 1, 1)
if not fds:
    sys.exit('fusermount3 mounted but sent no descriptor')
os.set_inheritable(fds[0], True)
os.environ['FUSE_DEVICE_FD'] = str(fds[0])
os.environ['FUSE_MOUNTPOINT'] = canonical
os.execvp(command[0], command)
`;

/** fusermount3's -o list: it adds fd, rootmode, user_id, group_id (and nosuid,nodev) itself. */
export function fusermountOptions(opts: KernelMountOptions): string {
  const o = [`fsname=${opts.fsname}`, `subtype=${opts.subtype}`];
  if (opts.allowOther) o.push('allow_other'); // needs user_allow_other in /etc/fuse.conf
  if (opts.defaultPermissions ?? true) o.push('default_permissions');
  if (opts.readOnly) o.push('ro');
  return o.join(',');
}

/**
 * The command that mounts through fusermount3 and then runs `argv` (usually this program's
 * own: process.execPath and process.argv.slice(1)) with the mounted descriptor inherited.
 */
export function fusermountCommand(mountpoint: string, opts: KernelMountOptions, argv: string[]): { command: string; args: string[] } {
  // The system's python3: one found first on PATH may be a per-user shim (pyenv) another user cannot run.
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  return { command: python, args: ['-c', SCRIPT, mountpoint, fusermountOptions(opts), ...argv] };
}

/**
 * The descriptor fusermount3 mounted at mountpoint and its canonical path, when this process
 * was started through fusermountCommand; taken once (the variables are removed so children do
 * not claim it). Never stats the mountpoint itself: that would wait for this very server.
 */
export function takeInheritedDevice(mountpoint: string): { fd: number; mountpoint: string } | undefined {
  const fd = process.env.FUSE_DEVICE_FD;
  const mp = process.env.FUSE_MOUNTPOINT;
  if (fd === undefined || mp === undefined) return undefined;
  const abs = resolve(mountpoint);
  if (abs !== mp && join(realpathSync(dirname(abs)), basename(abs)) !== mp) return undefined;
  delete process.env.FUSE_DEVICE_FD;
  delete process.env.FUSE_MOUNTPOINT;
  const n = Number(fd);
  if (!Number.isInteger(n) || n < 0) throw new Error(`fuse: FUSE_DEVICE_FD "${fd}" is not a descriptor`);
  return { fd: n, mountpoint: mp };
}

/** `fusermount3 -u` (lazy: `-uz`); the result of the run. */
export function fusermountUnmount(mountpoint: string, lazy: boolean): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('fusermount3', [lazy ? '-uz' : '-u', '--', mountpoint], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stderr: stderr.trim() }));
  });
}
