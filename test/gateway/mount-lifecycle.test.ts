// The mount as a process: big writes reach the handler, utimens keeps mtime, the admin
// socket answers `tierfs cache stats|flush`, `tierfs umount` and SIGTERM unmount cleanly,
// a shutdown whose storage hangs still ends (bounded), and `tierfs bench` runs on it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { cliPath } from '../support/process.js';
import { isMounted, startMemoryMount, type TestMount } from './support/mounted.js';

function cli(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cliPath, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function until(cond: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('gateway mount process (memory cluster, real FUSE)', () => {
  const mounts: TestMount[] = [];
  after(async () => {
    for (const m of mounts) await m.stop();
  });
  const start = async (env: NodeJS.ProcessEnv = {}) => {
    const m = await startMemoryMount(1, env);
    mounts.push(m);
    return m;
  };

  test('big writes: one 1 MiB write reaches the handler as one 1 MiB request (max_write, max_pages at INIT), not 4 KiB pieces', async () => {
    const m = await start();
    const fd = openSync(join(m.mountpoint, 'big'), 'w');
    writeSync(fd, Buffer.alloc(1 << 20, 1));
    closeSync(fd);
    const r = cli(['cache', 'stats', '--admin-socket', m.adminSocket, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const stats = JSON.parse(r.stdout) as { data: { maxWriteBytes: number; writes: number }; gateway: { openHandles: number } };
    // 128 KiB would mean the kernel ignored the INIT reply's max_pages.
    assert.equal(stats.data.maxWriteBytes, 1 << 20, 'max_write=1 MiB with max_pages');
    assert.ok(stats.data.writes <= 2, `1 MiB took ${stats.data.writes} write requests`);
    assert.equal(stats.gateway.openHandles, 0);
  });

  test('big reads: reading a 4 MiB file asks for 1 MiB at a time (max_pages)', async () => {
    const m = await start();
    const f = join(m.mountpoint, 'bigread');
    writeFileSync(f, Buffer.alloc(4 << 20, 3));
    // The written pages stay in the kernel's cache (the open keeps them: nothing changed), so
    // read around it: an O_DIRECT read of 4 MiB reaches us in requests of max_pages each.
    const dd = spawnSync('dd', [`if=${f}`, 'of=/dev/null', 'bs=4M', 'iflag=direct'], { encoding: 'utf8' });
    assert.equal(dd.status, 0, dd.stderr);
    assert.ok(readFileSync(f).equals(Buffer.alloc(4 << 20, 3)));
    const r = cli(['cache', 'stats', '--admin-socket', m.adminSocket, '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { data: { maxReadBytes: number } }).data.maxReadBytes, 1 << 20);
  });

  test('utimens sets atime and mtime independently', async () => {
    const m = await start();
    const f = join(m.mountpoint, 'times');
    writeFileSync(f, 'x');
    utimesSync(f, 1_000_000, 2_000_000);
    const st = statSync(f);
    assert.equal(st.atimeMs, 1_000_000_000);
    assert.equal(st.mtimeMs, 2_000_000_000);
  });

  test('cache stats prints a table and cache flush returns; umount by mountpoint unmounts', async () => {
    const m = await start();
    writeFileSync(join(m.mountpoint, 'f'), 'data');
    const env = { TIERFS_RUN_DIR: join(m.dir, 'run') };
    const table = cli(['cache', 'stats', '--mount', m.mountpoint], env);
    assert.equal(table.status, 0, table.stderr);
    assert.match(table.stdout, /gateway\.openHandles/);
    assert.match(table.stdout, /data\.maxWriteBytes/);
    const flush = cli(['cache', 'flush', '--mount', m.mountpoint, '--json'], env);
    assert.equal(flush.status, 0, flush.stderr);
    assert.ok('flushedMs' in (JSON.parse(flush.stdout) as object));
    const um = cli(['umount', m.mountpoint], env);
    assert.equal(um.status, 0, um.stderr);
    assert.equal(await m.proc.exited(), 0);
    assert.equal(isMounted(m.mountpoint), false);
    const again = cli(['umount', m.mountpoint], env);
    assert.notEqual(again.status, 0);
    assert.match(again.stderr, /nothing is mounted/);
  });

  test('SIGTERM flushes and unmounts, exit code 0', async () => {
    const m = await start();
    writeFileSync(join(m.mountpoint, 'f'), 'data');
    assert.equal(readFileSync(join(m.mountpoint, 'f'), 'utf8'), 'data');
    m.proc.proc.kill('SIGTERM');
    assert.equal(await m.proc.exited(), 0);
    await until(() => !isMounted(m.mountpoint), 'the mount to go away');
  });

  test('when storage hangs, shutdown still ends after its step timeouts and says what failed', async () => {
    const m = await start({ TIERFS_TEST_HANG_FLUSHALL: '1', TIERFS_TEST_STEP_TIMEOUT_MS: '500' });
    writeFileSync(join(m.mountpoint, 'f'), 'data');
    m.proc.proc.kill('SIGTERM');
    assert.equal(await m.proc.exited(), 1);
    await until(() => !isMounted(m.mountpoint), 'the mount to go away');
    await until(() => readFileSync(join(m.dir, 'gateway.log'), 'utf8').includes('flush before unmount'), 'the log line');
  });

  test('tierfs bench runs on the mount and prints one JSON line per phase, with --compare ratios', async () => {
    const m = await start();
    const local = join(m.dir, 'local');
    const r = cli(['bench', m.mountpoint, '--big-size', '4', '--small-count', '10', '--small-size', '16', '--threads', '2', '--json', '--compare', local]);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { bench: string; phase: string; mib_per_s: number; files_per_s: number; ratio: number });
    assert.deepEqual(lines.map((l) => l.phase), ['big-write', 'big-read', 'small-write', 'small-read', 'stat']);
    for (const l of lines) {
      assert.equal(l.bench, 'fs');
      assert.ok(l.files_per_s > 0 && Number.isFinite(l.ratio), JSON.stringify(l));
    }
    assert.deepEqual(spawnSync('ls', ['-A', m.mountpoint], { encoding: 'utf8' }).stdout, '', 'bench cleans up');
  });
});
