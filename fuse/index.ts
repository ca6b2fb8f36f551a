// fuse/: a server of the Linux FUSE kernel protocol in TypeScript, without libfuse.
//
//   const session = await mountFuse('/mnt/x', myFs, { fsname: 'myfs:vol', subtype: 'myfs' });
//   ...
//   await session.unmount({ lazy: true });
import { realpathSync } from 'node:fs';
import { ENODEV, READ_BUFFER_HEADROOM } from './abi.js';
import { FuseDevice, openFuseDevice } from './device.js';
import { abortConnection, connectionId, ensureFusectl, kernelMount, kernelUnmount, setReadahead } from './mount.js';
import { takeInheritedDevice } from './fusermount.js';
import { FuseServer } from './server.js';
import type { ConnInfo, FuseFilesystem, FuseLogger, FuseMountOptions, FuseNotifier, FuseSession, FuseSessionStats } from './types.js';

export * from './types.js';
export { errnoOf } from './server.js';
export { fusermountCommand, fusermountOptions } from './fusermount.js';

const MIB = 1024 * 1024;
const ECONNABORTED = 103;
/** How long the kernel has to send INIT after mount(2). */
const INIT_TIMEOUT_MS = 10_000;

const silent: FuseLogger = { debug() {}, info() {}, warn() {}, error() {} };

class Session implements FuseSession {
  readonly closed: Promise<void>;
  constructor(
    readonly mountpoint: string,
    private readonly server: FuseServer,
    readonly conn: ConnInfo,
    readonly connectionId: number,
    closed: Promise<void>,
  ) {
    this.closed = closed;
  }
  get notifier(): FuseNotifier {
    return this.server;
  }
  get stats(): Readonly<FuseSessionStats> {
    return this.server.stats;
  }
  resetMaxInFlight(): void {
    this.server.stats.maxInFlight = this.server.stats.inFlight;
  }
  lookupCount(ino: number): number {
    return this.server.lookupCount(ino);
  }
  async unmount(opts: { lazy?: boolean } = {}): Promise<void> {
    if (connectionId(this.mountpoint) !== this.connectionId) {
      // Unmounted from outside already (or never was): the connection ends by itself.
      await this.closed;
      return;
    }
    try {
      await kernelUnmount(this.mountpoint, false);
    } catch (err) {
      if (!opts.lazy || (err as NodeJS.ErrnoException).code !== 'EBUSY') throw err;
      await kernelUnmount(this.mountpoint, true);
      return;
    }
    await this.closed;
  }
  async abort(): Promise<void> {
    await abortConnection(this.connectionId);
    await this.closed;
  }
}

/**
 * Mounts fs at mountpoint and serves it until the connection ends. Resolves once the kernel
 * and the server have agreed on INIT. Needs root, or a process started through
 * fusermountCommand() (see README: unprivileged mounts).
 */
export async function mountFuse(mountpoint: string, fs: FuseFilesystem, opts: FuseMountOptions): Promise<FuseSession> {
  const log = opts.logger ?? silent;
  // Started through fusermount3 (fuse/fusermount.ts): the connection is mounted already.
  const inherited = takeInheritedDevice(mountpoint);
  const mp = inherited?.mountpoint ?? realpathSync(mountpoint);
  const maxWrite = opts.maxWrite ?? MIB;
  if (!(maxWrite >= 4096 && maxWrite <= MIB)) throw new Error(`fuse: maxWrite ${maxWrite} must be within 4 KiB..1 MiB`);
  const fd = inherited?.fd ?? openFuseDevice();
  const device = new FuseDevice(fd, {
    slotSize: maxWrite + READ_BUFFER_HEADROOM,
    slotCount: opts.concurrency ?? 16,
    readers: opts.readers ?? 2,
  });
  const server = new FuseServer(device, fs, opts, log);
  let closedResolve!: () => void;
  const closed = new Promise<void>((r) => (closedResolve = r));
  let mountedId: number | undefined;
  device.start(server.onRequest, (errno) => {
    log.info({ mountpoint: mp, errno }, 'fuse: connection closed');
    if (errno !== ENODEV && errno !== ECONNABORTED && mountedId !== undefined && connectionId(mp) === mountedId) {
      // The readers died with the connection still up (not an unmount or abort): nobody
      // would answer the kernel again, so abort it and let callers see ENOTCONN, not hang.
      log.error({ mountpoint: mp, errno }, 'fuse: the device readers stopped; aborting the connection');
      abortConnection(mountedId).catch((err: Error) => log.error({ err: err.message }, 'fuse: abort failed'));
    }
    void (async () => {
      await server.onClosed();
      await device.joined();
      device.closeFd();
      closedResolve();
    })();
  });
  try {
    if (inherited === undefined) await kernelMount(fd, mp, opts);
  } catch (err) {
    device.requestStop();
    await device.joined();
    device.closeFd();
    throw err;
  }
  let timer: NodeJS.Timeout | undefined;
  try {
    const conn = await Promise.race([
      server.initialized,
      new Promise<never>((_r, reject) => {
        timer = setTimeout(() => reject(new Error(`fuse: no INIT from the kernel within ${INIT_TIMEOUT_MS} ms`)), INIT_TIMEOUT_MS);
      }),
    ]);
    const id = connectionId(mp);
    if (id === undefined) throw new Error(`fuse: ${mp} is not in /proc/self/mountinfo after mounting`);
    const wantReadahead = opts.maxReadahead ?? MIB;
    if (wantReadahead > conn.maxReadahead) {
      try {
        conn.maxReadahead = setReadahead(id, wantReadahead);
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'fuse: cannot raise the readahead window; the kernel default stays');
      }
    }
    await ensureFusectl().catch((err: Error) => log.warn({ err: err.message }, 'fuse: fusectl unavailable; abort() will fail'));
    mountedId = id;
    log.info({ mountpoint: mp, fsname: opts.fsname, connection: id }, 'fuse: mounted');
    return new Session(mp, server, conn, id, closed);
  } catch (err) {
    await kernelUnmount(mp, true).catch(() => {});
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
