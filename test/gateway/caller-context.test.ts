// Ownership and times through the real kernel mount, against a local directory doing the
// same: a node another user creates belongs to that user (uid/gid of the request header),
// setgid directories hand their group down, and `touch -m` / `touch -a` change one time
// only (SETATTR with FATTR_MTIME/ATIME and their _NOW forms).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, writeFileSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { tempDir } from '../support/tmp.js';
import { startMemoryMount, type TestMount } from './support/mounted.js';

const OTHER = 1000;
const SETGID_GROUP = 50;
const isRoot = process.getuid?.() === 0;
const hasSetpriv = existsSync('/usr/bin/setpriv');

/** Runs a command as uid/gid OTHER with no supplementary groups. */
function asOther(cmd: string, args: string[]): void {
  execFileSync('setpriv', [`--reuid=${OTHER}`, `--regid=${OTHER}`, '--clear-groups', cmd, ...args], { stdio: 'pipe', timeout: 30_000 });
}

function owner(st: Stats): { uid: number; gid: number } {
  return { uid: st.uid, gid: st.gid };
}

describe('caller context and partial time updates (real FUSE)', { skip: !isRoot || !hasSetpriv ? 'needs root and setpriv' : false }, () => {
  let m: TestMount;
  let local: { path: string; remove(): void };
  before(async () => {
    m = await startMemoryMount(1, { TIERFS_TEST_ALLOW_OTHER: '1' });
    // The other user must be able to walk down to both trees.
    chmodSync(m.dir, 0o755);
    local = tempDir('tierfs-gw-local-');
    chmodSync(local.path, 0o755);
  });
  after(async () => {
    await m?.stop();
    local?.remove();
  });

  /** A world-writable sticky directory in the mount and its local twin. */
  const twinDirs = (name: string): string[] =>
    [m.mountpoint, local.path].map((root) => {
      const d = join(root, name);
      mkdirSync(d);
      chmodSync(d, 0o1777);
      return d;
    });

  test('file, dir, symlink and fifo made by another user are owned by that user, like on a local dir', () => {
    for (const d of twinDirs('shared')) {
      asOther('touch', [join(d, 'file')]);
      asOther('mkdir', [join(d, 'dir')]);
      asOther('ln', ['-s', 'file', join(d, 'link')]);
      asOther('mkfifo', [join(d, 'fifo')]);
    }
    for (const name of ['file', 'dir', 'link', 'fifo']) {
      const mounted = lstatSync(join(m.mountpoint, 'shared', name));
      const onDisk = lstatSync(join(local.path, 'shared', name));
      assert.deepEqual(owner(onDisk), { uid: OTHER, gid: OTHER }, `local ${name}`);
      assert.deepEqual(owner(mounted), owner(onDisk), `${name} in the mount`);
    }
    // Root's own files still belong to root.
    writeFileSync(join(m.mountpoint, 'shared', 'roots'), 'x');
    assert.deepEqual(owner(lstatSync(join(m.mountpoint, 'shared', 'roots'))), { uid: 0, gid: 0 });
  });

  test('in a setgid directory new nodes take its group and new dirs keep the bit, like on a local dir', () => {
    for (const d of twinDirs('sgid')) {
      chownSync(d, 0, SETGID_GROUP);
      chmodSync(d, 0o2777);
      asOther('touch', [join(d, 'file')]);
      asOther('mkdir', [join(d, 'dir')]);
    }
    for (const name of ['file', 'dir']) {
      const mounted = lstatSync(join(m.mountpoint, 'sgid', name));
      const onDisk = lstatSync(join(local.path, 'sgid', name));
      assert.deepEqual(owner(onDisk), { uid: OTHER, gid: SETGID_GROUP }, `local ${name}`);
      assert.deepEqual(owner(mounted), owner(onDisk), `${name} in the mount`);
      assert.equal(mounted.mode & 0o2000, onDisk.mode & 0o2000, `setgid bit of ${name}`);
    }
    assert.equal(lstatSync(join(m.mountpoint, 'sgid', 'dir')).mode & 0o2000, 0o2000);
  });

  test('touch -m and touch -a change only their own time; ctime moves; plain touch -a means now', () => {
    const files = [join(m.mountpoint, 'times'), join(local.path, 'times')];
    for (const f of files) {
      writeFileSync(f, 'x');
      execFileSync('touch', ['-d', '@3000000', f]);
    }
    for (const f of files) execFileSync('touch', ['-m', '-d', '@1000000', f]);
    for (const f of files) {
      const st = lstatSync(f);
      assert.equal(st.mtimeMs, 1_000_000_000, `touch -m sets mtime of ${f}`);
      assert.equal(st.atimeMs, 3_000_000_000, `touch -m keeps atime of ${f}`);
      assert.ok(st.ctimeMs > 1_600_000_000_000, `ctime of ${f} is now, not the given time`);
    }
    for (const f of files) execFileSync('touch', ['-a', '-d', '@2000000', f]);
    for (const f of files) {
      const st = lstatSync(f);
      assert.equal(st.atimeMs, 2_000_000_000, `touch -a sets atime of ${f}`);
      assert.equal(st.mtimeMs, 1_000_000_000, `touch -a keeps mtime of ${f}`);
    }
    const ctimeBefore = lstatSync(files[0]!).ctimeMs;
    const start = Date.now();
    for (const f of files) execFileSync('touch', ['-a', f]);
    const end = Date.now();
    for (const f of files) {
      const st = lstatSync(f);
      assert.ok(st.atimeMs >= start - 2000 && st.atimeMs <= end + 2000, `touch -a sets atime of ${f} to now (${st.atimeMs})`);
      assert.equal(st.mtimeMs, 1_000_000_000, `touch -a (now) keeps mtime of ${f}`);
    }
    assert.ok(lstatSync(files[0]!).ctimeMs >= ctimeBefore, 'ctime never goes back');
  });
});
