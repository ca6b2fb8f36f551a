// An unprivileged mount through fusermount3: a process running as `nobody` mounts the
// in-memory filesystem in a directory it owns (python3 receives fusermount3's descriptor and
// execs node with it inherited), serves it, and is unmounted with `fusermount3 -u` by its user
// or unmounts itself (session.unmount, which runs fusermount3 when not root).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fusermountCommand } from '../../fuse/index.js';
import { tempDir } from '../support/tmp.js';

const NOBODY = 65534;
const hasFusermount = spawnSync('fusermount3', ['-V']).status === 0;
const fuseDir = new URL('../../fuse/', import.meta.url).pathname;

function asNobody(cmd: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { uid: NOBODY, gid: NOBODY, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function mountedAt(dir: string): string | undefined {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === dir);
}

test('a non-root user mounts through fusermount3, uses the mount and unmounts it', { skip: !hasFusermount && 'fusermount3 is not installed (apt-get install fuse3)' }, async () => {
  const tmp = tempDir('tierfs-fusermount-');
  // fusermount3 opens /dev/fuse as the calling user: distributions make it 0666 (udev); some
  // containers leave it 0600, so the test opens it up and restores it.
  const devMode = statSync('/dev/fuse').mode & 0o777;
  if (devMode !== 0o666) chmodSync('/dev/fuse', 0o666);
  try {
    const home = join(tmp.path, 'home');
    mkdirSync(home);
    chownSync(home, NOBODY, NOBODY);
    chownSync(tmp.path, NOBODY, NOBODY);
    // The server: mounts, says so, serves until the connection ends, unmounts itself on SIGTERM.
    const server = join(home, 'serve.mjs');
    writeFileSync(server, `
      import { mountFuse } from ${JSON.stringify(join(fuseDir, 'index.js'))};
      import { MemFs } from ${JSON.stringify(join(fuseDir, 'mem-fs.js'))};
      const s = await mountFuse(process.argv[2], new MemFs(), { fsname: 'memfs:user', subtype: 'memfs' });
      process.on('SIGTERM', () => void s.unmount({ lazy: true }));
      console.log('mounted', process.getuid());
      await s.closed;
      console.log('closed');
    `);
    for (const unmountBy of ['fusermount3 -u', 'the server'] as const) {
      const mnt = join(home, unmountBy === 'the server' ? 'mnt2' : 'mnt');
      mkdirSync(mnt);
      chownSync(mnt, NOBODY, NOBODY);
      const { command, args } = fusermountCommand(mnt, { fsname: 'memfs:user', subtype: 'memfs' }, [process.execPath, server, mnt]);
      const child = spawn(command, args, { uid: NOBODY, gid: NOBODY, cwd: home, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
      for (let i = 0; i < 300 && !out.includes('mounted') && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100));
      assert.match(out, /mounted 65534/, `the server did not mount: ${err}`);
      const info = mountedAt(mnt);
      assert.ok(info, 'in mountinfo');
      assert.match(info, /fuse\.memfs/);
      assert.match(info, /user_id=65534/);

      const use = asNobody('sh', ['-c', `echo hello > ${mnt}/f && cat ${mnt}/f && ls -ln ${mnt}`]);
      assert.equal(use.status, 0, use.stderr);
      assert.match(use.stdout, /^hello\n/);
      assert.match(use.stdout, / 65534 +65534 .* f\n/, 'the file belongs to its creator');

      if (unmountBy === 'fusermount3 -u') {
        const u = asNobody('fusermount3', ['-u', mnt]);
        assert.equal(u.status, 0, u.stderr);
      } else {
        child.kill('SIGTERM');
      }
      assert.equal(await exited, 0, `server exit: ${err}`);
      assert.match(out, /closed/);
      assert.equal(mountedAt(mnt), undefined, 'unmounted');
    }
  } finally {
    for (const m of ['mnt', 'mnt2']) if (mountedAt(join(tmp.path, 'home', m))) spawnSync('umount', ['-l', join(tmp.path, 'home', m)]);
    tmp.remove();
    if (devMode !== 0o666) chmodSync('/dev/fuse', devMode);
  }
});
