// `tierfs up`: a working filesystem from one command. Starts the embedded S3 server (or uses
// an external S3 such as MinIO), one MDS on the embedded store (or several on an external
// etcd), three metaservers, creates the filesystem and mounts it. Logs, configs and pids
// live under the data dir; `tierfs down` stops everything.
import type { Command } from 'commander';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { MdsClient } from '../../mds/client.js';
import { TierfsError, StatusCode } from '../../common/status.js';
import { launchDaemon, isAlive } from '../launcher.js';
import { loadState, saveState, type ClusterState, type ProcessRecord } from '../cluster-state.js';
import { freeLoopbackPort, ensureUnmounted, waitFor } from '../cluster-ops.js';
import { action } from '../errors.js';
import { clusterKeyPath, s3SecretFrom } from '../cluster-auth.js';
import { createClusterKey, loadClusterAuth, useClusterAuth } from '../../common/cluster-auth.js';

export interface UpOptions {
  dataDir: string;
  mount: string;
  fs: string;
  s3Endpoint?: string;
  bucket?: string;
  accessKey?: string;
  secretKeyFile?: string;
  secretKey?: string;
  region?: string;
  etcd?: string;
  mdsCount: string;
  metaservers: string;
  chunkservers: string;
  cacheNodes: string;
  cacheSize: string;
  writeback?: boolean;
  asyncUnlink?: boolean;
  /** Recycle-bin days of the filesystem `up` creates (default 1; 0 = off). */
  trashDays?: string;
  /** Start the daemons only: no filesystem is created or mounted (e.g. a cluster for volumes). */
  skipMount?: boolean;
  allowOther?: boolean;
  monitoring?: boolean;
}

function trashDaysOf(days: string | undefined): number {
  const n = Number(days ?? '1');
  if (!Number.isFinite(n) || n < 0) throw new TierfsError(StatusCode.INVALID_ARGUMENT, `--trash-days "${days}": expected a number of days >= 0`);
  return n;
}

function s3FromOptions(opts: UpOptions): ClusterState['s3'] | null {
  const endpoint = opts.s3Endpoint ?? process.env.TIERFS_S3_ENDPOINT ?? process.env.AWS_ENDPOINT_URL;
  if (!endpoint) return null;
  const accessKey = opts.accessKey ?? process.env.AWS_ACCESS_KEY_ID;
  const secretKey = s3SecretFrom(opts);
  const bucket = opts.bucket ?? process.env.TIERFS_S3_BUCKET;
  if (!accessKey || !secretKey || !bucket) {
    throw new TierfsError(StatusCode.INVALID_ARGUMENT, 'an external S3 needs --bucket, --access-key and --secret-key-file (or TIERFS_S3_BUCKET, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)');
  }
  return { endpoint, bucket, accessKey, secretKey, region: opts.region ?? process.env.AWS_REGION ?? 'us-east-1', embedded: false };
}

async function newState(opts: UpOptions, dataDir: string): Promise<ClusterState> {
  const external = s3FromOptions(opts);
  const etcd = (opts.etcd ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const mdsCount = etcd.length > 0 ? Math.max(1, Number(opts.mdsCount)) : 1;
  const msCount = Math.max(1, Number(opts.metaservers));
  const csCount = Math.max(0, Number(opts.chunkservers) || 0);
  const ports: Record<string, number> = {};
  if (!external) ports.s3 = await freeLoopbackPort();
  for (let i = 1; i <= mdsCount; i++) ports[`mds${i}`] = await freeLoopbackPort();
  for (let i = 1; i <= msCount; i++) ports[`metaserver${i}`] = await freeLoopbackPort();
  for (let i = 1; i <= csCount; i++) ports[`chunkserver${i}`] = await freeLoopbackPort();
  const cnCount = Math.max(0, Number(opts.cacheNodes ?? 0));
  for (let i = 1; i <= cnCount; i++) ports[`cachenode${i}`] = await freeLoopbackPort();
  return {
    version: 1,
    ports,
    s3: external ?? { endpoint: `http://127.0.0.1:${ports.s3}`, bucket: 'tierfs', accessKey: 'S3RVER', secretKey: 'S3RVER', region: 'us-east-1', embedded: true },
    etcd,
    mdsAddresses: Array.from({ length: mdsCount }, (_, i) => `127.0.0.1:${ports[`mds${i + 1}`]}`),
    metaservers: Array.from({ length: msCount }, (_, i) => `127.0.0.1:${ports[`metaserver${i + 1}`]}`),
    chunkservers: Array.from({ length: csCount }, (_, i) => `127.0.0.1:${ports[`chunkserver${i + 1}`]}`),
    cacheNodes: Array.from({ length: cnCount }, (_, i) => `127.0.0.1:${ports[`cachenode${i + 1}`]}`),
    fsName: opts.fs,
    mountpoint: resolve(opts.mount),
    processes: [],
  };
}

/** The cluster key of this data dir, made on the first `up`; this process uses it from now on. */
function ensureClusterKey(dataDir: string): string {
  const file = clusterKeyPath(dataDir);
  if (!existsSync(file)) createClusterKey(file);
  useClusterAuth(loadClusterAuth({ clusterKeyFile: file }));
  return file;
}

export async function up(opts: UpOptions, say: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<ClusterState> {
  s3FromOptions(opts); // validate before touching the disk
  const dataDir = resolve(opts.dataDir);
  mkdirSync(join(dataDir, 'logs'), { recursive: true, mode: 0o700 });
  // The data dir holds the cluster key, the S3 secret (cluster.json) and every daemon's
  // state: no one else may enter it (also a data dir made by an older tierfs).
  chmodSync(dataDir, 0o700);
  const keyFile = ensureClusterKey(dataDir);
  let state = loadState(dataDir);
  if (state && state.processes.some((p) => isAlive(p.pid))) {
    throw new TierfsError(StatusCode.BUSY, `a cluster from ${dataDir} is already running (tierfs status --data-dir ${opts.dataDir}; tierfs down to stop it)`);
  }
  if (!state) state = await newState(opts, dataDir);
  state.mountpoint = resolve(opts.mount);
  state.fsName = opts.fs;
  state.processes = [];
  const record = (p: ProcessRecord) => {
    state!.processes.push(p);
    saveState(dataDir, state!);
  };
  const log = (name: string) => join(dataDir, 'logs', `${name}.log`);
  // Fixed HTTP (metrics, status page) ports, so a scrape config and `tierfs dashboard` find them.
  for (const name of [...state.mdsAddresses.map((_, i) => `mds${i + 1}`), ...state.metaservers.map((_, i) => `metaserver${i + 1}`)]) {
    state.ports[`${name}-http`] ??= await freeLoopbackPort();
  }
  // The mount serves metrics only when asked (--monitoring): its port is fixed like the daemons'.
  if (opts.monitoring && !opts.skipMount) state.ports['mount-http'] ??= await freeLoopbackPort();
  saveState(dataDir, state);

  if (state.s3.embedded) {
    const l = await launchDaemon('s3', ['s3server', '--dir', join(dataDir, 's3'), '--port', String(state.ports.s3), '--bucket', state.s3.bucket], log('s3'));
    record({ name: 's3', role: 's3', pid: l.pid, address: state.s3.endpoint, log: l.log });
    say(`s3         ${state.s3.endpoint} (embedded, pid ${l.pid})`);
  }

  for (const [i, address] of state.mdsAddresses.entries()) {
    const name = `mds${i + 1}`;
    const args = ['mds', '--listen', address, '--data-dir', join(dataDir, name), '--set', `clusterKeyFile=${keyFile}`, '--set', `metrics.port=${state.ports[`${name}-http`]}`];
    if (state.etcd.length > 0) args.push('--etcd', state.etcd.join(','));
    const l = await launchDaemon(name, args, log(name));
    record({ name, role: 'mds', pid: l.pid, address, log: l.log });
    say(`${name.padEnd(10)} ${address} (pid ${l.pid})`);
  }

  for (const [i, address] of state.metaservers.entries()) {
    const name = `metaserver${i + 1}`;
    const dir = join(dataDir, name);
    mkdirSync(dir, { recursive: true });
    const configFile = join(dir, 'metaserver.yaml');
    const config = { dataDir: dir, listen: address, mds: state.mdsAddresses, zone: `zone${i + 1}`, hostName: `host${i + 1}`, clusterKeyFile: keyFile, metrics: { port: state.ports[`${name}-http`] } };
    writeFileSync(configFile, stringify(config), { mode: 0o600 });
    const l = await launchDaemon(name, ['metaserver', '--config', configFile], log(name));
    record({ name, role: 'metaserver', pid: l.pid, address, log: l.log });
    say(`${name.padEnd(10)} ${address} (pid ${l.pid})`);
  }

  // Chunkservers (block volumes): each in its own zone; ports kept like the metaservers'.
  const csCount = Math.max(0, Number(opts.chunkservers) || 0);
  const chunkservers = state.chunkservers ?? [];
  for (let i = chunkservers.length; i < csCount; i++) {
    state.ports[`chunkserver${i + 1}`] ??= await freeLoopbackPort();
    chunkservers.push(`127.0.0.1:${state.ports[`chunkserver${i + 1}`]}`);
  }
  state.chunkservers = chunkservers;
  // Started together: their ports (Raft ids) are fixed already, and they find each other through the MDS.
  const started = await Promise.allSettled(chunkservers.slice(0, csCount).map(async (address, i) => {
    const name = `chunkserver${i + 1}`;
    const dir = join(dataDir, name);
    mkdirSync(dir, { recursive: true });
    const configFile = join(dir, 'chunkserver.yaml');
    writeFileSync(configFile, stringify({ dataDir: dir, listen: address, mds: state!.mdsAddresses, zone: `zone${i + 1}`, hostName: `chunkhost${i + 1}`, chunkPool: { target: 4 }, clusterKeyFile: keyFile }), { mode: 0o600 });
    const l = await launchDaemon(name, ['chunkserver', '--config', configFile], log(name));
    record({ name, role: 'chunkserver', pid: l.pid, address, log: l.log });
    say(`${name.padEnd(10)} ${address} (pid ${l.pid})`);
  }));
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;

  // Cache nodes: asked for now, or kept from the cluster's first start (their ports stay).
  const wantNodes = Math.max(0, Number(opts.cacheNodes ?? 0));
  const nodes = state.cacheNodes ?? [];
  for (let i = nodes.length; i < wantNodes; i++) nodes.push(`127.0.0.1:${await freeLoopbackPort()}`);
  state.cacheNodes = nodes;
  for (const [i, address] of nodes.entries()) {
    const name = `cachenode${i + 1}`;
    const dir = join(dataDir, name);
    mkdirSync(dir, { recursive: true });
    const configFile = join(dir, 'cachenode.yaml');
    writeFileSync(configFile, stringify({ dataDir: dir, listen: address, mds: state.mdsAddresses.join(','), clusterKeyFile: keyFile }), { mode: 0o600 });
    const l = await launchDaemon(name, ['cachenode', '--config', configFile], log(name));
    record({ name, role: 'cachenode', pid: l.pid, address, log: l.log });
    say(`${name.padEnd(10)} ${address} (pid ${l.pid})`);
  }

  const mds = new MdsClient(state.mdsAddresses);
  try {
    await waitFor('metaservers and chunkservers online', 60_000, async () => {
      const st = await mds.clusterStatus();
      const online = (kind: string) => st.metaservers.filter((m) => m.state === 'ONLINE' && (m.kind || 'metaserver') === kind).length;
      return online('metaserver') >= state!.metaservers.length && online('chunkserver') >= csCount;
    });
    if (opts.skipMount) return state;
    try {
      await mds.getFsInfo(state.fsName);
    } catch (err) {
      if (!(err instanceof TierfsError) || err.code !== StatusCode.NOT_FOUND) throw err;
      await mds.createFs({
        name: state.fsName,
        fs_type: 's3',
        s3: { endpoint: state.s3.endpoint, bucket: state.s3.bucket, access_key: state.s3.accessKey, secret_key: state.s3.secretKey, region: state.s3.region, key_prefix: '' },
        trash_days: trashDaysOf(opts.trashDays),
      });
      say(`filesystem ${state.fsName} created`);
    }
  } finally {
    mds.close();
  }

  mkdirSync(state.mountpoint, { recursive: true });
  await ensureUnmounted(state.mountpoint);
  const mountArgs = ['mount', '--cluster-key-file', keyFile, '--mds', state.mdsAddresses.join(','), '--fs', state.fsName, state.mountpoint, '--cache-dir', join(dataDir, 'cache'), '--cache-size', opts.cacheSize];
  if (opts.writeback) mountArgs.push('--writeback');
  if (opts.asyncUnlink) mountArgs.push('--async-unlink');
  if (opts.allowOther) mountArgs.push('--allow-other');
  if (opts.monitoring) mountArgs.push('--metrics-listen', `127.0.0.1:${state.ports['mount-http']}`);
  const m = await launchDaemon('mount', mountArgs, log('mount'), 90_000);
  record({ name: 'mount', role: 'mount', pid: m.pid, log: m.log });
  say(`mounted    ${state.fsName} at ${state.mountpoint} (pid ${m.pid})`);
  if (opts.monitoring) say(`prometheus ${writeScrapeConfig(dataDir, state)} (Grafana dashboard: monitoring/grafana-dashboard.json)`);
  return state;
}

/** A Prometheus scrape config for the daemons of this cluster; returns its path. */
export function writeScrapeConfig(dataDir: string, state: ClusterState): string {
  const targets = (role: string, count: number) => Array.from({ length: count }, (_, i) => `127.0.0.1:${state.ports[`${role}${i + 1}-http`]}`);
  const config = {
    global: { scrape_interval: '10s' },
    scrape_configs: [
      { job_name: 'tierfs-mds', static_configs: [{ targets: targets('mds', state.mdsAddresses.length) }] },
      { job_name: 'tierfs-metaserver', static_configs: [{ targets: targets('metaserver', state.metaservers.length) }] },
      ...(state.ports['mount-http'] ? [{ job_name: 'tierfs-mount', static_configs: [{ targets: [`127.0.0.1:${state.ports['mount-http']}`] }] }] : []),
    ],
  };
  mkdirSync(join(dataDir, 'monitoring'), { recursive: true });
  const file = join(dataDir, 'monitoring', 'prometheus.yml');
  writeFileSync(file, stringify(config));
  return file;
}

export function register(program: Command): void {
  program
    .command('up')
    .description('start a local cluster (S3, MDS, 3 metaservers), create a filesystem and mount it')
    .option('--data-dir <dir>', 'where logs, configs, pids and data live', '.tierfs')
    .option('--mount <dir>', 'mount point', './mnt')
    .option('--fs <name>', 'filesystem name', 'default')
    .option('--s3-endpoint <url>', 'external S3 endpoint (e.g. MinIO); default: the embedded S3 server')
    .option('--bucket <name>', 'bucket of the external S3')
    .option('--access-key <key>', 'access key of the external S3 (or AWS_ACCESS_KEY_ID)')
    .option('--secret-key-file <file>', 'file holding the secret key of the external S3 (or AWS_SECRET_ACCESS_KEY; never on the command line, where ps shows it)')
    .option('--secret-key <key>', 'the secret key on the command line, for existing scripts (ps shows it; warns)')
    .option('--region <region>', 'region of the external S3')
    .option('--etcd <urls>', 'external etcd endpoints: the MDS keeps its state there and elects a leader')
    .option('--mds-count <n>', 'MDS processes (with --etcd)', '1')
    .option('--metaservers <n>', 'metaserver processes', '3')
    .option('--skip-mount', 'start the daemons only: no filesystem is created or mounted')
    .option('--chunkservers <n>', 'chunkserver processes for block volumes (tierfs volume)', '0')
    .option('--cache-nodes <n>', 'cache nodes (tierfs cachenode): a cache group every mount reads through', '0')
    .option('--cache-size <MiB>', 'local disk cache size of the mount', '10240')
    .option('--writeback', 'close returns once data is staged on local disk')
    .option('--async-unlink', 'the mount answers unlink before the metaserver commits it (tierfs mount --async-unlink)')
    .option('--trash-days <days>', 'days a deleted file stays in the recycle bin /.trash of a new filesystem (0 = off)', '1')
    .option('--allow-other', 'let other users use the mount')
    .option('--monitoring', 'write a Prometheus scrape config of the daemons to <data-dir>/monitoring/prometheus.yml')
    .action(
      action(async (opts: UpOptions) => {
        await up(opts);
      }),
    );
}
