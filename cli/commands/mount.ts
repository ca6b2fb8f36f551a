// `tierfs mount --mds ADDRS --fs NAME MOUNTPOINT`: mounts a filesystem through FUSE, in the
// foreground (default; prints the TIERFS_READY line when usable) or as a daemon.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, openSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { createLogger } from '../../common/log.js';
import { StatusCode, TierfsError } from '../../common/status.js';
import type { KernelMountOptions } from '../../fuse/mount.js';
import type { RunningGateway } from '../../gateway/mount.js';
import { canonicalMountpoint, removeMountRecord, writeMountRecord } from '../../gateway/mount-registry.js';
import { action } from '../errors.js';
import { announceReady, READY_PREFIX } from '../ready.js';

interface MountOpts {
  mds: string;
  fs: string;
  cacheDir?: string;
  cacheSize: string;
  writeback?: boolean;
  asyncUnlink?: boolean;
  uploadDelay: string;
  writebackCache?: boolean;
  attrTimeout: string;
  entryTimeout: string;
  readOnly?: boolean;
  allowOther?: boolean;
  foreground?: boolean;
  daemon?: boolean;
  logFile?: string;
  flushTimeout: string;
  trashSweep: string;
  readAhead: string;
  metaTimeout: string;
  s3Timeout: string;
  cacheGroup: boolean;
  cacheGroupWrite?: boolean;
  metricsListen?: string;
}

/** --metrics-listen HOST:PORT (port 0: any free port, announced when ready). */
function listenAddress(value: string): { host: string; port: number } {
  const at = value.lastIndexOf(':');
  const host = value.slice(0, at);
  const port = Number(value.slice(at + 1));
  if (at <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TierfsError(StatusCode.INVALID_ARGUMENT, `--metrics-listen ${value}: give HOST:PORT, e.g. 127.0.0.1:9567`);
  }
  return { host, port };
}

function number(name: string, value: string, min: number): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < min) throw new TierfsError(StatusCode.INVALID_ARGUMENT, `--${name} = ${value}: must be a number >= ${min}`);
  return n;
}

export function defaultCacheDir(fsName: string, mountpoint: string): string {
  const id = createHash('sha256').update(mountpoint).digest('hex').slice(0, 8);
  return join(process.env.TIERFS_CACHE_ROOT ?? join(homedir(), '.tierfs', 'cache'), `${fsName}-${id}`);
}

/** --daemon: run ourselves with --foreground detached, wait for its ready line, pass it on. */
async function daemonize(logFile: string): Promise<void> {
  const args = process.argv.slice(1).filter((a) => a !== '--daemon');
  args.push('--foreground');
  const out = openSync(logFile, 'a');
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', 'pipe', out] });
  await new Promise<void>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      const line = buf.split('\n').find((l) => l.startsWith(READY_PREFIX));
      if (line) {
        process.stdout.write(line + '\n');
        resolve();
      }
    });
    child.once('exit', (code) => reject(new TierfsError(StatusCode.UNAVAILABLE, `the mount exited with ${code} before it was ready; see ${logFile}`)));
  });
  child.stdout!.destroy();
  child.unref();
}

/**
 * Not root: fusermount3 mounts, and this same command runs again with the descriptor
 * inherited (fuse/fusermount.ts). This process stays as its parent: it passes signals on,
 * exits with its code, and unmounts lazily if the server died without unmounting.
 */
async function relaunchThroughFusermount(mnt: string, mountOpts: KernelMountOptions): Promise<void> {
  const { fusermountCommand } = await import('../../fuse/index.js');
  const { command, args } = fusermountCommand(mnt, mountOpts, [process.execPath, ...process.execArgv, ...process.argv.slice(1)]);
  const child = spawn(command, args, { stdio: 'inherit' });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));
  const code = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
  });
  if (readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === mnt)) {
    spawnSync('fusermount3', ['-uz', '--', mnt], { stdio: 'ignore' });
  }
  process.exit(code);
}

export function register(program: Command): void {
  program
    .command('mount')
    .description('mount a tierfs filesystem through FUSE')
    .argument('<mountpoint>', 'an existing empty directory')
    .requiredOption('--mds <addrs>', 'MDS addresses, host:port[,host:port...]')
    .requiredOption('--fs <name>', 'filesystem name')
    .option('--cache-dir <dir>', 'disk cache directory (staged writes + read cache); default ~/.tierfs/cache/<fs>-<id>')
    .option('--cache-size <MiB>', 'disk cache capacity in MiB (0 disables the disk cache)', '10240')
    .option('--writeback', 'close returns once data is staged on local disk (uploaded in the background)')
    .option('--async-unlink', 'answer unlink before the metaserver commits it (rm -rf at the speed of the kernel; an answered unlink is lost if the mount process dies first, other mounts see it a moment later)')
    .option('--upload-delay <s>', 'with --writeback: staged blocks upload once writes paused this long, or at once past a quarter of the cache staged (a burst of writes goes at local disk speed)', '1')
    .option('--writeback-cache', 'kernel writeback cache: writes gather in the page cache (faster small writes; other mounts see size/mtime only after fsync/close, mtime lags)')
    .option('--attr-timeout <s>', 'how long the kernel caches attributes, in seconds (this mount\'s own changes invalidate at once)', '30')
    .option('--entry-timeout <s>', 'how long the kernel caches names, in seconds (this mount\'s own changes invalidate at once)', '30')
    .option('--read-only', 'mount read-only')
    .option('--read-ahead <KiB>', 'kernel readahead window of the mount (root only; 0 keeps the kernel default of 128)', '4096')
    .option('--allow-other', 'let other users use the mount (FUSE allow_other; the kernel checks permissions, new files belong to their creator)')
    .option('--foreground', 'stay in the foreground (default)')
    .option('--daemon', 'detach once the mount is ready')
    .option('--log-file <file>', 'log file of a --daemon mount (default <cache-dir>/gateway.log)')
    .option('--meta-timeout <s>', 'a metadata call that no metaserver answers fails with EIO after this long (cached attributes are served meanwhile)', '10')
    .option('--flush-timeout <s>', 'at unmount, give up on each flush/deregister step after this long', '60')
    .option('--no-cache-group', 'do not read through the cache group (cache nodes)')
    .option('--cache-group-write', 'also hand the blocks this mount writes to S3 to the cache group')
    .option('--s3-timeout <s>', 'how long S3 may take: close/fsync then stage on the cache disk (success) or answer EIO; uncached reads answer EIO', '30')
    .option('--metrics-listen <host:port>', 'serve Prometheus metrics of this mount (FUSE ops, metadata calls, S3, caches, backlog) on HOST:PORT (off by default)')
    .option('--trash-sweep <s>', 'how often this mount purges expired recycle-bin entries, in seconds', '60')
    .action(
      action(async (mountpoint: string, opts: MountOpts) => {
        if (opts.foreground && opts.daemon) throw new TierfsError(StatusCode.INVALID_ARGUMENT, '--foreground and --daemon exclude each other');
        // Relaunched through fusermount3 (below): mounted already, and a stat of the
        // mountpoint would wait for this very process to serve it.
        const mountedByFusermount = process.env.FUSE_DEVICE_FD !== undefined;
        let st;
        try {
          st = mountedByFusermount ? null : statSync(mountpoint);
        } catch {
          throw new TierfsError(StatusCode.NOT_FOUND, `mountpoint ${mountpoint} does not exist`);
        }
        if (st && !st.isDirectory()) throw new TierfsError(StatusCode.NOT_DIR, `mountpoint ${mountpoint} is not a directory`);
        const mnt = canonicalMountpoint(mountpoint);
        const cacheDir = opts.cacheDir ?? defaultCacheDir(opts.fs, mnt);
        mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
        const cacheMiB = number('cache-size', opts.cacheSize, 0);
        const attrTimeout = number('attr-timeout', opts.attrTimeout, 0);
        const readAhead = number('read-ahead', opts.readAhead, 0);
        const entryTimeout = number('entry-timeout', opts.entryTimeout, 0);
        const flushTimeoutMs = number('flush-timeout', opts.flushTimeout, 1) * 1000;
        const metaDeadlineMs = number('meta-timeout', opts.metaTimeout, 1) * 1000;
        const s3TimeoutMs = number('s3-timeout', opts.s3Timeout, 1) * 1000;
        const metricsAt = opts.metricsListen !== undefined ? listenAddress(opts.metricsListen) : null;
        if (opts.daemon) return daemonize(opts.logFile ?? join(cacheDir, 'gateway.log'));
        if ((process.getuid?.() ?? 0) !== 0 && !mountedByFusermount) {
          return relaunchThroughFusermount(mnt, { fsname: `tierfs:${opts.fs}`, subtype: 'tierfs', allowOther: !!opts.allowOther, readOnly: !!opts.readOnly });
        }

        // Loaded here so other subcommands start fast (S3 SDK, gRPC, the FUSE server).
        const { connectCluster } = await import('../../gateway/mount-setup.js');
        const { startGateway } = await import('../../gateway/mount.js');
        const { createRegistry, startMetricsServer } = await import('../../common/metrics.js');
        const log = createLogger('gateway');
        const registry = metricsAt ? createRegistry('mount') : undefined;
        registry?.setDefaultLabels({ component: 'mount', mountpoint: mnt });
        const parts = await connectCluster({
          mdsAddrs: opts.mds, fsName: opts.fs, mountpoint: mnt,
          cacheDir: cacheMiB > 0 ? cacheDir : null, cacheSizeBytes: cacheMiB * 2 ** 20,
          writeback: !!opts.writeback, uploadDelayMs: number('upload-delay', opts.uploadDelay, 0) * 1000, logger: log, metaDeadlineMs, s3TimeoutMs,
          cacheGroup: opts.cacheGroup !== false, cacheGroupWrite: !!opts.cacheGroupWrite,
          trashSweepMs: number('trash-sweep', opts.trashSweep, 0.1) * 1000,
          ...(registry ? { registry } : {}),
        });
        const adminSocket = join(cacheDir, 'admin.sock');
        let exiting = false;
        const stop = async (reason: string) => {
          if (exiting) return;
          exiting = true;
          const result = await gateway.shutdown(reason);
          removeMountRecord(mnt);
          if (!result.clean) log.error({ problems: result.problems }, 'unmounted with problems');
          process.exit(result.clean ? 0 : 1);
        };
        let gateway: RunningGateway;
        try {
          gateway = await startGateway(parts, {
            mountpoint: mnt,
            adminSocket,
            fs: { attrTimeoutMs: attrTimeout * 1000, entryTimeoutMs: entryTimeout * 1000, readOnly: !!opts.readOnly },
            fuse: { fsname: `tierfs:${opts.fs}`, allowOther: !!opts.allowOther, readAheadKiB: readAhead, writebackCache: !!opts.writebackCache },
            asyncUnlink: !!opts.asyncUnlink,
            shutdownStepTimeoutMs: flushTimeoutMs,
            logger: log,
            onUmountRequest: () => void stop('tierfs umount'),
          });
        } catch (err) {
          await parts.deregister?.().catch(() => {});
          throw err;
        }
        process.on('SIGTERM', () => void stop('SIGTERM'));
        process.on('SIGINT', () => void stop('SIGINT'));
        // A port already taken fails the mount (unmounted again) before it is announced; the
        // process's exit closes the endpoint.
        const metrics = registry && metricsAt
          ? await startMetricsServer(registry, metricsAt.host, metricsAt.port).catch(async (err: unknown) => {
            await gateway.shutdown('the metrics endpoint could not start');
            throw new TierfsError(StatusCode.INVALID_ARGUMENT, `--metrics-listen ${opts.metricsListen}: ${err instanceof Error ? err.message : String(err)}`);
          })
          : null;
        const metricsAddress = metrics ? `${metricsAt!.host}:${metrics.port}` : undefined;
        if (metrics) log.info({ address: metricsAddress }, 'serving Prometheus metrics');
        writeMountRecord({ mountpoint: mnt, pid: process.pid, adminSocket, fs: opts.fs });
        announceReady({ mountpoint: mnt, pid: process.pid, adminSocket, fs: opts.fs, fsId: parts.fsInfo.fs_id, ...(metricsAddress ? { metricsAddress } : {}) });
      }),
    );
}
