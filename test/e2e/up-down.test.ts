// `tierfs up` / `tierfs down` as a user runs them: a mounted filesystem from one command,
// data that survives down + up, and a status that shows the whole cluster.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile, mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { tempDir } from '../support/tmp.js';
import { cliPath } from '../support/process.js';
import { isMounted, ensureUnmounted } from '../../cli/cluster-ops.js';

const run = promisify(execFile);
const tierfs = (args: string[], timeout = 240_000) =>
  run(process.execPath, [cliPath, ...args], { timeout, maxBuffer: 16 << 20, env: { ...process.env, TIERFS_LOG_LEVEL: 'warn' } });

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('tierfs up mounts a filesystem; data survives tierfs down and up', { timeout: 600_000 }, async () => {
  const tmp = tempDir('tierfs-up-');
  const dataDir = join(tmp.path, 'data');
  const mnt = join(tmp.path, 'mnt');
  try {
    await tierfs(['up', '--data-dir', dataDir, '--mount', mnt, '--cache-size', '512']);
    assert.ok(isMounted(mnt), 'mounted after up');

    const big = randomBytes(9 * 1024 * 1024 + 123);
    await mkdir(join(mnt, 'dir', 'sub'), { recursive: true });
    await writeFile(join(mnt, 'dir', 'big.bin'), big);
    for (let i = 0; i < 20; i++) await writeFile(join(mnt, 'dir', 'sub', `f${i}`), `file ${i}\n`);
    assert.equal(sha(await readFile(join(mnt, 'dir', 'big.bin'))), sha(big));

    const status = JSON.parse((await tierfs(['status', '--data-dir', dataDir, '--json'])).stdout) as {
      mds: Array<{ leader: boolean }>;
      metaservers: Array<{ state: string }>;
      filesystems: Array<{ name: string; mounts: unknown[] }>;
    };
    assert.equal(status.mds.filter((m) => m.leader).length, 1);
    assert.equal(status.metaservers.filter((m) => m.state === 'ONLINE').length, 3);
    assert.equal(status.filesystems.find((f) => f.name === 'default')?.mounts.length, 1);

    await tierfs(['down', '--data-dir', dataDir]);
    assert.ok(!isMounted(mnt), 'unmounted after down');

    // The second start with --monitoring: the scrape config lists the mount's metrics endpoint too.
    await tierfs(['up', '--data-dir', dataDir, '--mount', mnt, '--cache-size', '512', '--monitoring']);
    assert.equal(sha(await readFile(join(mnt, 'dir', 'big.bin'))), sha(big));
    const scrape = parseYaml(await readFile(join(dataDir, 'monitoring', 'prometheus.yml'), 'utf8')) as { scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }> };
    assert.deepEqual(scrape.scrape_configs.map((c) => c.job_name), ['tierfs-mds', 'tierfs-metaserver', 'tierfs-mount']);
    const mountTarget = scrape.scrape_configs[2]!.static_configs[0]!.targets[0]!;
    assert.match(await (await fetch(`http://${mountTarget}/metrics`)).text(), /tierfs_mount_fuse_op_seconds_count\{[^}]*op="read"/, 'the mount serves its metrics where the config says');
    assert.equal((await readdir(join(mnt, 'dir', 'sub'))).length, 20);
    assert.equal(await readFile(join(mnt, 'dir', 'sub', 'f7'), 'utf8'), 'file 7\n');
    assert.equal((await stat(join(mnt, 'dir', 'big.bin'))).size, big.length);
  } finally {
    await tierfs(['down', '--data-dir', dataDir]).catch(() => {});
    await ensureUnmounted(mnt).catch(() => {});
    tmp.remove();
  }
});

test('tierfs up refuses a second start from the same data dir and reports bad S3 options', { timeout: 120_000 }, async () => {
  await assert.rejects(
    tierfs(['up', '--s3-endpoint', 'http://127.0.0.1:1', '--data-dir', '/tmp/tierfs-never']),
    (err: { stderr: string; code: number }) => /--bucket, --access-key and --secret-key-file/.test(err.stderr) && err.code === 1,
  );
});
