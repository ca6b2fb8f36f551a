// A full tierfs cluster as separate processes for end-to-end tests: s3rver, an MDS on its
// embedded store, three metaservers, one filesystem — and `tierfs mount` processes on it.
// Everything is torn down by close(), including FUSE mounts whose gateway was killed.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MdsClient } from '../../../mds/client.js';
import { startMetaProc, type MetaProc } from '../../metaserver/cluster-support.js';
import { spawnDaemon, type Spawned } from '../../support/process.js';
import { freePort } from '../../support/ports.js';
import { startS3, type TestS3 } from '../../support/s3.js';
import { tempDir } from '../../support/tmp.js';
import { waitFor as poll } from '../../support/wait.js';

export const waitFor = (what: string, fn: () => Promise<boolean> | boolean, ms = 60_000, everyMs = 200): Promise<void> =>
  poll(what, fn, ms, everyMs).then(() => {});

export function isMounted(mountpoint: string): boolean {
  return readFileSync('/proc/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === mountpoint);
}

/** The FUSE connection number of a mount (the minor of its st_dev, from /proc/self/mountinfo). */
function fuseConnection(mountpoint: string): string | null {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f[4] === mountpoint) return f[2]?.split(':')[1] ?? null;
  }
  return null;
}

/** Aborts the FUSE connection (so nothing hangs on a dead gateway) and lazily unmounts. */
export function forceUnmount(mountpoint: string): void {
  if (!isMounted(mountpoint)) return;
  const conn = fuseConnection(mountpoint);
  try {
    if (!isMounted('/sys/fs/fuse/connections')) execFileSync('mount', ['-t', 'fusectl', 'none', '/sys/fs/fuse/connections'], { stdio: 'ignore' });
  } catch {
    /* not root or no fusectl: the lazy unmount below still detaches it */
  }
  const abort = conn ? `/sys/fs/fuse/connections/${conn}/abort` : '';
  if (abort && existsSync(abort)) {
    try {
      writeFileSync(abort, '1');
    } catch {
      /* best effort */
    }
  }
  try {
    execFileSync('umount', ['-l', mountpoint], { stdio: 'ignore' });
  } catch {
    /* best effort */
  }
}

export type MountProc = Spawned<{ mountpoint: string; pid: number; adminSocket: string }>;

export interface MountOptions {
  /** Name under the cluster dir: mount point `<name>` and cache dir `<name>-cache` unless given. */
  name: string;
  cacheDir?: string;
  writeback?: boolean;
  /** Kernel + gateway attr/entry cache timeout in seconds. */
  cacheTimeoutSec?: number;
  extraArgs?: string[];
  /** Another filesystem of the cluster than the one it was started with. */
  fs?: string;
}

export interface TestCluster {
  dir: string;
  s3: TestS3;
  mds: Spawned<{ address: string }>;
  metas: MetaProc[];
  client: MdsClient;
  fsName: string;
  mount(opts: MountOptions): Promise<{ proc: MountProc; mountpoint: string; cacheDir: string }>;
  /** Restarts metaserver `i` on its old address and data dir (after kill9). */
  restartMeta(i: number): Promise<void>;
  close(): Promise<void>;
}

export async function startCluster(fsName: string): Promise<TestCluster> {
  const tmp = tempDir(`tierfs-e2e-${fsName}-`);
  const mounts: { proc: MountProc; mountpoint: string }[] = [];
  const metas: MetaProc[] = [];
  const metaExtra = (i: number) => ({ zone: `z${i}`, hostName: `host${i}`, heartbeatIntervalMs: 300 });
  let s3: TestS3 | undefined;
  let mds: Spawned<{ address: string }> | undefined;
  let client: MdsClient | undefined;
  const close = async () => {
    for (const m of mounts) {
      await m.proc.stop(30_000).catch(() => {});
      forceUnmount(m.mountpoint);
    }
    client?.close();
    for (const m of metas) await m.proc.stop().catch(() => {});
    await mds?.stop().catch(() => {});
    await s3?.close().catch(() => {});
    if (!mounts.some((m) => isMounted(m.mountpoint))) tmp.remove();
  };
  try {
    s3 = await startS3(`tierfs-${fsName}`);
    mds = await spawnDaemon<{ address: string }>(
      ['mds', '--listen', `127.0.0.1:${await freePort()}`, '--data-dir', join(tmp.path, 'mds'),
        '--set', 'partitions.size=100000', '--set', 'scheduler.enabled=false'],
      { logFile: join(tmp.path, 'mds.log') },
    );
    for (let i = 0; i < 3; i++) metas.push(await startMetaProc(tmp.path, `ms${i}`, { mds: [mds.info.address], ...metaExtra(i) }));
    client = new MdsClient([mds.info.address]);
    const c = client;
    await waitFor('3 metaservers online', async () => (await c.clusterStatus()).metaservers.filter((m) => m.state === 'ONLINE').length === 3);
    await c.createFs({
      name: fsName, fs_type: 's3', block_size: 1 << 20, chunk_size: 4 << 20,
      s3: { endpoint: s3.endpoint, bucket: s3.bucket, access_key: s3.accessKeyId, secret_key: s3.secretAccessKey, region: 'us-east-1', key_prefix: `${fsName}/` },
    });
  } catch (err) {
    await close();
    throw err;
  }
  const cluster: TestCluster = {
    dir: tmp.path, s3, mds, metas, client, fsName,
    mount: async (opts) => {
      const mountpoint = join(tmp.path, opts.name);
      const cacheDir = opts.cacheDir ?? join(tmp.path, `${opts.name}-cache`);
      mkdirSync(mountpoint, { recursive: true });
      const t = String(opts.cacheTimeoutSec ?? 1);
      const args = ['mount', '--mds', mds!.info.address, '--fs', opts.fs ?? fsName, mountpoint, '--cache-dir', cacheDir, '--cache-size', '512',
        '--attr-timeout', t, '--entry-timeout', t, ...(opts.writeback ? ['--writeback'] : []), ...(opts.extraArgs ?? [])];
      const proc = await spawnDaemon<{ mountpoint: string; pid: number; adminSocket: string }>(args, {
        logFile: join(tmp.path, `${opts.name}.log`), env: { TIERFS_RUN_DIR: join(tmp.path, 'run') }, readyTimeoutMs: 60_000,
      }).catch((err: unknown) => {
        forceUnmount(mountpoint);
        throw err;
      });
      mounts.push({ proc, mountpoint });
      return { proc, mountpoint, cacheDir };
    },
    restartMeta: async (i) => {
      const old = metas[i]!;
      await old.proc.stop().catch(() => {});
      metas[i] = await startMetaProc(tmp.path, `ms${i}`, { mds: [mds!.info.address], ...metaExtra(i) }, {}, old.address);
    },
    close,
  };
  return cluster;
}
