// A running mount: the inode-based VFS served on the FUSE kernel protocol (fuse/), the admin
// socket, and a bounded shutdown (flush -> unmount, lazily when busy -> flush what arrived
// meanwhile -> deregister -> close), used by `tierfs mount` over the real cluster and by the
// tests over in-memory parts.
import { execFile } from 'node:child_process';
import type { Server } from 'node:net';
import { silentLogger, type Logger } from '../common/log.js';
import { mountFuse, type FuseSession } from '../fuse/index.js';
import type { MetaClient } from '../metaserver/meta-client.js';
import { closeAdminServer, startAdminServer, type AdminCommand } from './admin.js';
import { CacheAdmin } from './cache-admin.js';
import type { FileData } from './file-data.js';
import { setReadAhead } from './readahead.js';
import { Vfs, type VfsOptions } from './vfs.js';
import { QuotaVfs } from './vfs-quota.js';
import { OpStats, timed, type OpObserver } from './op-stats.js';
import { TrashVfs, type TrashOptions } from './vfs-trash.js';
import { AsyncUnlinks } from './async-unlinks.js';
import type { QuotaStore } from './quota-tracker.js';

export interface GatewayParts {
  meta: MetaClient;
  data: FileData;
  /** Closes what the data path stands on (the disk cache), after data and meta are closed. */
  closeExtra?: () => Promise<void>;
  /** Deregisters the mount (MDS umountFs) and stops session refresh; the last shutdown step. */
  deregister?: () => Promise<void>;
  /** Extra fields for `cache stats` (e.g. the MDS session). */
  describe?: () => Record<string, unknown>;
  /** The filesystem's directory quotas: given, the mount enforces them (vfs-quota.ts). */
  quotas?: QuotaStore;
  /** The recycle bin (vfs-trash.ts; needs `quotas`): days > 0 turns it on. */
  trash?: TrashOptions;
  /** Also told of every FUSE request and metadata call (the mount's Prometheus metrics, mount-metrics.ts). */
  opObservers?: { fuse?: OpObserver; meta?: OpObserver };
}

/** How the kernel mount is set up (the VFS's cache timeouts are in GatewayOptions.fs). */
export interface GatewayFuseOptions {
  /** Source shown in /proc/mounts (default "tierfs"). */
  fsname?: string;
  /** Let users other than the mounting one in; the kernel checks permissions (default_permissions). */
  allowOther?: boolean;
  /**
   * The kernel's writeback cache: writes are buffered in the page cache and sent in large
   * batches. Off by default: the size and mtime other mounts see lag behind until the kernel
   * writes back, so close-to-open across mounts holds only after fsync/close.
   */
  writebackCache?: boolean;
  /** Kernel readahead window in KiB (default 4096; 0 leaves the kernel's default). */
  readAheadKiB?: number;
  /** Largest WRITE request (default 1 MiB). */
  maxWrite?: number;
  /** Requests read from /dev/fuse at once (default: the server's). */
  concurrency?: number;
  debug?: boolean;
}

export interface GatewayOptions {
  mountpoint: string;
  adminSocket?: string;
  fs?: VfsOptions;
  fuse?: GatewayFuseOptions;
  /** Answer UNLINK before its metaserver write commits (async-unlinks.ts: what it trades). */
  asyncUnlink?: boolean;
  /** Upper bound of each shutdown step; when the cluster is gone we still exit. */
  shutdownStepTimeoutMs?: number;
  logger?: Logger;
  /** What `tierfs umount` through the admin socket does (the CLI shuts down and exits). */
  onUmountRequest?: () => void;
}

export interface RunningGateway {
  fs: Vfs;
  session: FuseSession;
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

/** umount -l: the last resort when the session's own unmount failed. */
export function lazyUnmount(mountpoint: string): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile('umount', ['-l', mountpoint], (err, _out, stderr) => (err ? reject(new Error(`umount -l: ${stderr || err.message}`)) : resolve())),
  );
}

export async function startGateway(parts: GatewayParts, opts: GatewayOptions): Promise<RunningGateway> {
  const log = opts.logger ?? silentLogger;
  const stepMs = opts.shutdownStepTimeoutMs ?? 30_000;
  const fuseOpts = opts.fuse ?? {};
  const vfsOpts = { logger: log, ...opts.fs };
  // Calls into the metadata service and from the kernel, counted and timed for `tierfs stats`.
  const metaOps = new OpStats(parts.opObservers?.meta);
  const fuseOps = new OpStats(parts.opObservers?.fuse);
  const meta = timed(parts.meta, metaOps, new Set(['close']));
  const fs = !parts.quotas ? new Vfs(meta, parts.data, vfsOpts)
    : parts.trash && parts.trash.days > 0 ? new TrashVfs(meta, parts.data, vfsOpts, parts.quotas, parts.trash)
      : new QuotaVfs(meta, parts.data, vfsOpts, parts.quotas);
  if (fs instanceof QuotaVfs) await fs.quota.start();
  if (fs instanceof TrashVfs) fs.startSweeper();
  const unlinks = opts.asyncUnlink ? new AsyncUnlinks(fs, { logger: log }) : null;
  const session = await mountFuse(opts.mountpoint, timed(unlinks ? unlinks.wrap(fs) : fs, fuseOps, new Set(['attachKernel', 'stats', 'flushAll', 'resolvePath'])), {
    fsname: fuseOpts.fsname ?? 'tierfs',
    subtype: 'tierfs',
    allowOther: fuseOpts.allowOther ?? false,
    defaultPermissions: true,
    readOnly: opts.fs?.readOnly ?? false,
    writebackCache: fuseOpts.writebackCache ?? false,
    ...(fuseOpts.maxWrite ? { maxWrite: fuseOpts.maxWrite } : {}),
    ...(fuseOpts.concurrency ? { concurrency: fuseOpts.concurrency } : {}),
    debug: fuseOpts.debug ?? false,
    logger: log,
  });
  fs.attachKernel(session.notifier, (ino) => session.lookupCount(ino));
  const readAhead = fuseOpts.readAheadKiB ?? 4096;
  if (readAhead > 0) await setReadAhead(session.mountpoint, readAhead, log);
  let stopping: Promise<{ clean: boolean; problems: string[] }> | null = null;

  const stats = async (): Promise<Record<string, unknown>> => ({
    mountpoint: opts.mountpoint,
    pid: process.pid,
    gateway: fs.stats(),
    fuse: { ...session.stats, conn: { ...session.conn, flags: `0x${session.conn.flags.toString(16)}` } },
    data: await parts.data.stats(),
    ops: { fuse: fuseOps.snapshot(), meta: metaOps.snapshot() },
    ...(unlinks ? { asyncUnlinks: { ...unlinks.counts } } : {}),
    ...(parts.describe?.() ?? {}),
  });
  const flush = async (): Promise<void> => {
    await unlinks?.drain();
    await fs.flushAll();
    await parts.data.waitUploaded();
  };

  let admin: Server | null = null;
  const gateway: RunningGateway = {
    fs,
    session,
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
            // Busy (a shell inside, an open file): detach it now; open files keep working
            // until closed, and the connection ends with the last of them.
            await session.unmount({ lazy: true });
          } catch (err) {
            log.warn({ err: String(err) }, 'unmount failed; trying umount -l');
            await lazyUnmount(opts.mountpoint);
          }
        });
        await step('flush after unmount', flush);
        if (!connectionEnded) {
          // Still busy after a lazy unmount: end the connection, or the reader threads stay
          // blocked on /dev/fuse and the process cannot exit. Open files there get ENOTCONN.
          await step('abort the kernel connection', () => session.abort());
        }
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

  // Unmounted from outside (umount, or the connection aborted): shut down like `tierfs umount`.
  let connectionEnded = false;
  void session.closed.then(() => {
    connectionEnded = true;
    if (stopping) return;
    log.warn({ mountpoint: opts.mountpoint }, 'the kernel connection ended; shutting down');
    if (opts.onUmountRequest) opts.onUmountRequest();
    else void gateway.shutdown('connection closed');
  });

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
