// The MDS status page in a real headless browser (Debian's chromium): after its script ran,
// the rendered page lists the filesystem, its mount with the mount's report (version, staged
// backlog) and its quotas; /status.json and `tierfs status` answer the same data, and the
// backlog a writeback mount reports grows while S3 is down and drains once it is back.
// And `tierfs stats` on the same mount: the live counters move while files are written and
// read back from S3; the mount's Prometheus endpoint (--metrics-listen) counts the same.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TIERFS_VERSION } from '../../../common/version.js';
import { adminRequest } from '../../../gateway/admin.js';
import { cliPath, repoRoot } from '../../support/process.js';
import { after, before, describe, test } from 'node:test';
import { startCluster, waitFor, type TestCluster } from '../support/cluster.js';

const chromium = ['chromium', 'chromium-browser'].find((c) => spawnSync('which', [c]).status === 0);

describe('status page and live stats', () => {
  let cluster: TestCluster;
  let mountpoint = '';
  let adminSocket = '';
  let metricsUrl = '';
  let url = '';

  before(async () => {
    cluster = await startCluster('statuspage');
    const m = await cluster.mount({ name: 'mnt', writeback: true, extraArgs: ['--metrics-listen', '127.0.0.1:0'] });
    metricsUrl = `http://${(m.proc.info as unknown as { metricsAddress: string }).metricsAddress}/metrics`;
    mountpoint = m.mountpoint;
    adminSocket = m.proc.info.adminSocket;
    url = `http://127.0.0.1:${(cluster.mds.info as unknown as { metricsPort: number }).metricsPort}/status`;
  });
  after(async () => {
    await cluster?.close();
  });

  type Report = { version: string; staged_bytes: number; staged_blocks: number; upload_bytes_per_sec: number };
  type Status = { filesystems: Array<{ name: string; quotas: Array<{ path: string; max_bytes: number; max_inodes: number; used_inodes: number }>; quotas_error: string; mounts: Array<{ path: string; last_seen_ms: number; report?: Report }> }> };
  const status = async (): Promise<Status> => (await (await fetch(`${url}.json`)).json()) as Status;
  const ourMount = (s: Status) => s.filesystems.find((f) => f.name === cluster.fsName)?.mounts.find((m) => m.path === mountpoint);
  const tierfs = (...args: string[]) => execFileSync(process.execPath, [cliPath, ...args, '--mds', cluster.mds.info.address], { encoding: 'utf8' });

  test('status.json carries the filesystem, its mount with the mount\'s report, and its quotas', async () => {
    await waitFor('the mount listed with its report', async () => ourMount(await status())?.report?.version === TIERFS_VERSION, 30_000);
    mkdirSync(join(mountpoint, 'q'));
    writeFileSync(join(mountpoint, 'q', 'one'), 'x');
    tierfs('quota', 'set', '--fs', cluster.fsName, '--path', '/q', '--bytes', '10MiB', '--inodes', '100');
    await waitFor('the quota listed', async () => {
      const fs = (await status()).filesystems.find((f) => f.name === cluster.fsName)!;
      assert.equal(fs.quotas_error, '');
      return fs.quotas.some((q) => q.path === '/q' && q.max_bytes === 10 * 2 ** 20 && q.max_inodes === 100 && q.used_inodes === 1);
    }, 20_000);
    const out = tierfs('status');
    assert.match(out, new RegExp(`${mountpoint}.*${TIERFS_VERSION.replace(/\./g, '\\.')}`), 'tierfs status shows the mount with its version');
    assert.match(out, /\/q .*0\.0 MiB \/ 10\.0 MiB.*1 \/ 100/, 'tierfs status shows the quota');
  });

  test('the backlog a writeback mount reports grows while S3 is down and drains after', async () => {
    await cluster.s3.stop();
    try {
      writeFileSync(join(mountpoint, 'backlog'), Buffer.alloc(3 << 20, 7)); // staged at close (writeback), not uploaded
      await waitFor('the staged backlog reported', async () => (ourMount(await status())?.report?.staged_bytes ?? 0) >= 3 << 20, 30_000);
      assert.ok((ourMount(await status())!.report!.staged_blocks) >= 3, 'three 1 MiB blocks staged');
    } finally {
      await cluster.s3.restart();
    }
    await waitFor('the backlog drained', async () => ourMount(await status())?.report?.staged_bytes === 0, 60_000);
  });

  test('the page rendered by chromium shows the filesystem, its mount and the metaservers', { skip: chromium ? false : 'chromium is not installed (apt-get install -y chromium)' }, () => {
    const dom = execFileSync(chromium!, ['--headless', '--no-sandbox', '--disable-gpu', '--virtual-time-budget=10000', '--dump-dom', url], { encoding: 'utf8', timeout: 90_000 });
    assert.match(dom, /<h1>tierfs cluster<\/h1>/);
    assert.ok(dom.includes(`<td>${cluster.fsName}</td>`), 'the filesystem row');
    assert.ok(dom.includes(`<td>${mountpoint}</td>`), 'the mount row');
    assert.match(dom, new RegExp(`<td>${mountpoint}</td><td>\\d+</td><td>${TIERFS_VERSION.replace(/\./g, '\\.')}</td><td>0\\.0 MiB</td><td>0</td>`), 'the mount row shows its version and an empty backlog');
    assert.match(dom, /<td>\/q<\/td><td>10\.0 MiB<\/td><td>0\.0 MiB \(0 %\)<\/td><td>100<\/td><td>1 \(1 %\)<\/td>/, 'the quota row');
    assert.equal((dom.match(/class="ONLINE">ONLINE</g) ?? []).length, 3, 'three metaservers online');
    // (The page's 2 s refresh runs on chromium's virtual clock here, whose fetches do not
    // complete; the refresh source, /status.json, is checked above.)
  });

  test('tierfs stats shows FUSE and metadata operations and S3 GETs and PUTs apart per interval', async () => {
    // Runs until the traffic is done (and one more interval): a loaded machine may take many seconds for it.
    const run = spawn(process.execPath, [cliPath, 'stats', '--mount', mountpoint, '--interval', '1', '--count', '600', '--json'], { env: { ...process.env, TIERFS_RUN_DIR: join(cluster.dir, 'run') } });
    let out = '';
    run.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const exited = once(run, 'exit');
    await waitFor('the first sample', () => run.exitCode !== null || out.length > 0, 30_000, 50).catch(() => undefined);
    for (let i = 0; i < 10; i++) writeFileSync(join(mountpoint, `f${i}`), Buffer.alloc(256 * 1024, i));
    // Read them back from S3: no copy left in the kernel's pages or the mount's caches.
    await adminRequest(adminSocket, 'flush', 60_000);
    await adminRequest(adminSocket, 'evict', 60_000, {});
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    for (let i = 0; i < 10; i++) readFileSync(join(mountpoint, `f${i}`));
    await new Promise((r) => setTimeout(r, 50)); // lines that arrived while the reads blocked
    const lines0 = out.split('\n').length;
    await waitFor('one more interval', () => out.split('\n').length > lines0 + 1 || run.exitCode !== null, 30_000, 100);
    run.kill('SIGTERM');
    await exited;
    type Line = { fuse: { total: { perSec: number; avgMs: number }; byOp: Record<string, unknown> }; meta: { total: { perSec: number } }; s3: { getsPerSec: number; getBytesPerSec: number; putsPerSec: number; putBytesPerSec: number } };
    const lines = out.trim().split('\n').map((l) => JSON.parse(l) as Line);
    assert.ok(lines.length >= 2, out);
    assert.ok(lines.some((l) => l.fuse.total.perSec > 0 && l.fuse.total.avgMs > 0 && 'write' in l.fuse.byOp), 'FUSE writes counted and timed');
    assert.ok(lines.some((l) => l.meta.total.perSec > 0), 'metadata calls counted');
    const sum = (f: (l: Line) => number) => lines.reduce((n, l) => n + f(l), 0);
    assert.ok(sum((l) => l.s3.putsPerSec) > 0 && sum((l) => l.s3.putBytesPerSec) > 0, `S3 PUTs counted: ${out}`);
    assert.ok(sum((l) => l.s3.getsPerSec) > 0 && sum((l) => l.s3.getBytesPerSec) >= 256 * 1024, `S3 GETs counted apart from PUTs: ${out}`);
  });

  test('the mount\'s Prometheus endpoint has FUSE ops, metadata calls, S3 GET/PUT, cache tiers and the backlog', async () => {
    // After the traffic of the tests above: writes, uploads, evicted blocks read back from S3.
    const text = await (await fetch(metricsUrl)).text();
    const value = (name: string, labels: Record<string, string> = {}): number => {
      const line = text.split('\n').find((l) => {
        const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(l);
        return m?.[1] === name && Object.entries(labels).every(([k, v]) => (m[2] ?? '').includes(`${k}="${v}"`));
      });
      assert.ok(line, `${name} ${JSON.stringify(labels)} is exported`);
      return Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    assert.ok(value('tierfs_mount_fuse_op_seconds_count', { op: 'write' }) > 0, 'FUSE writes timed');
    assert.ok(value('tierfs_mount_fuse_op_seconds_count', { op: 'read' }) > 0, 'FUSE reads timed');
    assert.ok(value('tierfs_mount_meta_rpc_seconds_count', { method: 'lookup' }) > 0, 'metadata calls timed');
    assert.ok(value('tierfs_s3_request_seconds_count', { op: 'put' }) > 0 && value('tierfs_s3_request_seconds_count', { op: 'get' }) > 0, 'S3 PUTs and GETs apart');
    assert.ok(value('tierfs_s3_bytes_total', { op: 'get' }) >= 256 * 1024 && value('tierfs_s3_bytes_total', { op: 'put' }) >= 10 * 256 * 1024, 'S3 bytes by operation');
    assert.ok(value('tierfs_mount_cache_misses_total', { tier: 'memory' }) > 0, 'memory tier misses (the evicted blocks)');
    assert.ok(text.includes('tierfs_mount_cache_hits_total'), 'cache hits per tier exported');
    assert.equal(value('tierfs_mount_staged_bytes'), 0, 'nothing staged once the uploads are done');
    assert.ok(value('tierfs_mount_uploaded_bytes_total') >= 3 << 20, 'the writeback uploads counted');
    assert.match(text, /mountpoint="[^"]*mnt"/, 'series carry the mountpoint');
  });

  test('a metaserver exports the raft log lag of each member of the copysets it leads', async () => {
    const fsId = (await cluster.client.getFsInfo(cluster.fsName)).fs_id;
    const root = (await cluster.client.listPartitions(fsId)).find((l) => l.partition!.start <= 1 && 1 <= l.partition!.end)!;
    const copyset = `${root.partition!.pool_id}.${root.partition!.copyset_id}`;
    const follower = cluster.metas.find((m) => root.peers.includes(m.address) && m.address !== root.leader)!;
    /** The lag of `follower` in the root copyset, as whichever metaserver leads it exports it (undefined: none does). */
    const lag = async (): Promise<number | undefined> => {
      for (const m of cluster.metas) {
        if (m === follower) continue;
        const text = await (await fetch(`http://127.0.0.1:${(m.proc.info as { metricsPort: number }).metricsPort}/metrics`)).text();
        const line = text.split('\n').find((l) => l.startsWith('tierfs_metaserver_raft_log_lag_entries{') && l.includes(`copyset="${copyset}"`) && l.includes(`peer="${follower.address}"`));
        if (line) return Number(line.slice(line.lastIndexOf(' ') + 1));
      }
      return undefined;
    };
    await waitFor('the lag exported', async () => (await lag()) !== undefined, 20_000);
    process.kill(follower.proc.pid, 'SIGSTOP'); // alive but deaf: the leader's log runs ahead of it
    try {
      for (let i = 0; i < 5; i++) writeFileSync(join(mountpoint, `lag${i}`), 'x'); // names in the root copyset
      await waitFor('the stopped follower lags', async () => ((await lag()) ?? 0) > 0, 30_000);
    } finally {
      process.kill(follower.proc.pid, 'SIGCONT');
    }
    await waitFor('the follower caught up', async () => (await lag()) === 0, 60_000);
  });

  test('every metric the Grafana dashboard queries is exported by the MDS, the metaservers or the mount', async () => {
    const dashboard = JSON.parse(readFileSync(join(repoRoot, 'monitoring', 'grafana-dashboard.json'), 'utf8')) as { panels: Array<{ title: string; targets?: Array<{ expr: string }> }> };
    const endpoints = [
      `http://127.0.0.1:${(cluster.mds.info as unknown as { metricsPort: number }).metricsPort}/metrics`,
      ...cluster.metas.map((m) => `http://127.0.0.1:${(m.proc.info as { metricsPort: number }).metricsPort}/metrics`),
      metricsUrl,
    ];
    const exported = new Set<string>();
    for (const url of endpoints) {
      for (const line of (await (await fetch(url)).text()).split('\n')) {
        const m = /^# TYPE (\S+) /.exec(line);
        if (m) exported.add(m[1]!);
      }
    }
    const queried = dashboard.panels.flatMap((p) => (p.targets ?? []).flatMap((t) => (t.expr.match(/tierfs_[a-z0-9_]+/g) ?? []).map((name) => ({ panel: p.title, name }))));
    assert.ok(queried.some((q) => q.name === 'tierfs_mount_fuse_op_seconds_count') && queried.some((q) => q.name === 'tierfs_metaserver_raft_log_lag_entries'), 'the mount and lag panels are there');
    const missing = queried.filter(({ name }) => !exported.has(name) && !exported.has(name.replace(/_(bucket|count|sum)$/, '')));
    assert.deepEqual(missing, [], 'panels query only metrics that exist');
  });
});
