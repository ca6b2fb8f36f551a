// A running mount: the POSIX layer on FUSE, the admin socket, and a bounded shutdown
// (flush -> unmount -> flush what arrived meanwhile -> deregister -> close), used by
// `tierfs mount` over the real cluster and by the tests over in-memory parts.
import { execFile } from 'node:child_process';
import type { Server } from 'node:net';
import type Fuse from 'fuse-native';
import { silentLogger, type Logger } from '../common/log.js';
import type { MetaClient } from '../metaserver/meta-client.js';
import { closeAdminServer, startAdminServer, type AdminCommand } from './admin.js';
import { CacheAdmin } from './cache-admin.js';
import type { FileData } from './file-data.js';
import { mountFuse, unmountFuse, type FuseMountOptions } from './fuse-adapter.js';
import { TierFileSystem, type TierFsOptions } from './tier-fs.js';

export interface GatewayParts {
  meta: MetaClient;
  data: FileData;
  /** Closes what the data path stands on (the disk cache), after data and meta are closed. */
  closeExtra?: () => Promise<void>;
  /** Deregisters the mount (MDS umountFs) and stops session refresh; the last shutdown step. */
  deregister?: () => Promise<void>;
  /** Extra fields for `cache stats` (e.g. the MDS session). */
  describe?: () => Record<string, unknown>;
}

export interface GatewayOptions {
  mountpoint: string;
  adminSocket?: string;
  fs?: TierFsOptions;
  fuse: FuseMountOptions;
  /** Upper bound of each shutdown step; when the cluster is gone we still exit. */
  shutdownStepTimeoutMs?: number;
  logger?: Logger;
  /** What `tierfs umount` through the admin socket does (the CLI shuts down and exits). */
  onUmountRequest?: () => void;
}

export interface RunningGateway {
  fs: TierFileSystem;
  mountpoint: string;
  adminSocket?: string;
  stats(): Promise<Record<string, unknown>>;
  flush(): Promise<void>;
  /** Flushes, unmounts, deregisters and closes; never hangs longer than a few step timeouts. */
  shutdown(reason: string): Promise<{ clean: boolean; problems: string[] }>;
}

class StepTimeout extends Error {}

async function bounded<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new StepTimeout(`${what}: no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function fusermountLazy(mountpoint: string): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile('fusermount', ['-u', '-z', mountpoint], (err, _out, stderr) => (err ? reject(new Error(`fusermount -u -z: ${stderr || err.message}`)) : resolve())),
  );
}

export async function startGateway(parts: GatewayParts, opts: GatewayOptions): Promise<RunningGateway> {
  const log = opts.logger ?? silentLogger;
  const stepMs = opts.shutdownStepTimeoutMs ?? 30_000;
  const fs = new TierFileSystem(parts.meta, parts.data, { logger: log, ...opts.fs });
  const fuse: Fuse = await mountFuse(fs, opts.mountpoint, { logger: log, ...opts.fuse });
  let stopping: Promise<{ clean: boolean; problems: string[] }> | null = null;

  const stats = async (): Promise<Record<string, unknown>> => ({
    mountpoint: opts.mountpoint,
    pid: process.pid,
    gateway: fs.stats(),
    data: await parts.data.stats(),
    ...(parts.describe?.() ?? {}),
  });
  const flush = async (): Promise<void> => {
    await fs.flushAll();
    await parts.data.waitUploaded();
  };

  let admin: Server | null = null;
  const gateway: RunningGateway = {
    fs,
    mountpoint: opts.mountpoint,
    adminSocket: opts.adminSocket,
    stats,
    flush,
    shutdown: (reason) => {
      stopping ??= (async () => {
        const problems: string[] = [];
        const step = async (what: string, fn: () => Promise<unknown>) => {
          try {
            await bounded(what, stepMs, fn());
          } catch (err) {
            const msg = `${what}: ${err instanceof Error ? err.message : String(err)}`;
            problems.push(msg);
            log.error({ step: what, err: msg }, 'shutdown step failed');
          }
        };
        log.info({ reason, mountpoint: opts.mountpoint }, 'unmounting');
        await step('flush before unmount', flush);
        await step('unmount', async () => {
          try {
            await unmountFuse(fuse);
          } catch (err) {
            log.warn({ err: String(err) }, 'unmount failed; trying fusermount -u -z');
            await fusermountLazy(opts.mountpoint);
          }
        });
        await step('flush after unmount', flush);
        const unflushed = fs.stats().openInodes;
        if (problems.length > 0) log.error({ problems, openInodes: unflushed }, 'some data may not have reached storage');
        await step('close the data path', () => parts.data.close());
        await step('close the metadata client', () => parts.meta.close());
        if (parts.closeExtra) await step('close the disk cache', parts.closeExtra);
        if (parts.deregister) await step('deregister from the MDS', parts.deregister);
        if (admin && opts.adminSocket) await closeAdminServer(admin, opts.adminSocket);
        return { clean: problems.length === 0, problems };
      })();
      return stopping;
    },
  };

  if (opts.adminSocket) {
    const cache = new CacheAdmin(fs, parts.data, opts.mountpoint);
    const handle = async (cmd: AdminCommand, args: unknown): Promise<unknown> => {
      if (cmd === 'stats') return stats();
      if (cmd === 'warmup') return cache.warmup(args);
      if (cmd === 'evict') return cache.evict(args);
      if (cmd === 'config') return cache.config(args);
      if (cmd === 'flush') {
        const started = Date.now();
        await flush();
        return { flushedMs: Date.now() - started, data: await parts.data.stats() };
      }
      // umount: answer first, then shut down (the caller waits for the process to exit).
      setImmediate(() => void (opts.onUmountRequest ? opts.onUmountRequest() : gateway.shutdown('admin umount')));
      return { unmounting: true, pid: process.pid };
    };
    admin = await startAdminServer(opts.adminSocket, handle, log);
  }
  return gateway;
}
