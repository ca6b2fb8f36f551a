// /dev/fuse: one descriptor, requests read by worker threads into shared slots, replies
// written by the main thread.
//
// Why worker threads and not libuv's pool: a read of /dev/fuse blocks until the kernel has a
// request. Reads issued with fs.read would each hold a libuv pool thread for as long as the
// mount is idle; with the default pool of 4 the filesystem's own disk I/O (fs.promises,
// which shares that pool) could starve behind them, and UV_THREADPOOL_SIZE can only be
// raised before the pool first starts, which a library cannot guarantee. A reader worker
// blocks in readSync on its own thread, posts "slot, length" and reads again at once, without
// waiting for the event loop, so the pool stays free for the filesystem.
//
// Replies are written synchronously from the main thread (fs.writeSync / writevSync, one
// call per reply): the kernel takes a reply without blocking, and skipping the pool saves a
// thread hop per request. Notifications are the exception: the kernel may hold a lock while
// it waits for one of our replies (a directory's i_rwsem during CREATE, a page lock during a
// read), and an invalidation needs that lock, so notifications are written through the pool
// (fs.write), never blocking the loop that must answer first.
import { closeSync, openSync, write, writeSync, writevSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { EIO, ENOENT } from './abi.js';
import { SLOT_SHIFT, type ReaderData } from './device-reader.js';

export interface DeviceOptions {
  /** Size of one read buffer: max_write + header room. */
  slotSize: number;
  /** Read buffers; a request holds one from read until parsed (WRITE: until written). */
  slotCount: number;
  /** Threads blocked in read(2) at once. */
  readers: number;
}

export type DeviceErrorHandler = (errno: number) => void;

/** Result of writing a reply. */
export const enum WriteResult {
  OK = 0,
  /** ENOENT: the request was interrupted or aborted; the kernel no longer waits for it. */
  GONE = 1,
  /** ENODEV: the connection is closed. */
  CLOSED = 2,
}

export function openFuseDevice(): number {
  return openSync('/dev/fuse', 'r+');
}

export class FuseDevice {
  readonly fd: number;
  private readonly slotBuffer: SharedArrayBuffer;
  private readonly views: Buffer[] = [];
  private readonly ctl: Int32Array;
  private readonly workers: Worker[] = [];
  private readonly exits: Promise<void>[] = [];
  private readonly gen: number;
  private readonly stop: number;
  private live = 0;
  private closedFlag = false;
  private fdClosed = false;
  private onClose: (errno: number) => void = () => {};
  readonly slotSize: number;
  readonly slotCount: number;
  /** Slots held by the main thread right now (for the in-flight bound and its assertion). */
  held = 0;

  constructor(fd: number, private readonly opts: DeviceOptions) {
    this.fd = fd;
    this.slotSize = opts.slotSize;
    this.slotCount = opts.slotCount;
    if (opts.slotSize >= SLOT_SHIFT) throw new Error(`read buffer of ${opts.slotSize} bytes is larger than ${SLOT_SHIFT}`);
    if (opts.slotCount < 1 || opts.readers < 1) throw new Error('a device needs at least one slot and one reader');
    this.slotBuffer = new SharedArrayBuffer(opts.slotSize * opts.slotCount);
    for (let i = 0; i < opts.slotCount; i++) this.views.push(Buffer.from(this.slotBuffer, i * opts.slotSize, opts.slotSize));
    this.ctl = new Int32Array(new SharedArrayBuffer(4 * (opts.slotCount + 2)));
    this.gen = opts.slotCount;
    this.stop = opts.slotCount + 1;
  }

  /**
   * Starts the reader threads. onRequest(slot, length) runs on the main thread for each
   * request; the slot is the caller's until release(slot). onClose(errno) runs once when the
   * connection ends (ENODEV after unmount or abort) or stop() was called (errno 0).
   */
  start(onRequest: (slot: number, length: number) => void, onClose: (errno: number) => void): void {
    this.onClose = onClose;
    const url = new URL('./device-reader.js', import.meta.url);
    for (let i = 0; i < this.opts.readers; i++) {
      const data: ReaderData = {
        fd: this.fd,
        slots: this.slotBuffer,
        slotSize: this.slotSize,
        slotCount: this.slotCount,
        control: this.ctl.buffer as SharedArrayBuffer,
        first: Math.floor((i * this.slotCount) / this.opts.readers),
      };
      const w = new Worker(url, {
        workerData: data,
        resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 4 },
        stdout: false,
        stderr: false,
      });
      this.live++;
      w.on('message', (v: number) => {
        if (v < 0) {
          this.finish(-v);
          return;
        }
        const slot = Math.floor(v / SLOT_SHIFT);
        this.held++;
        onRequest(slot, v - slot * SLOT_SHIFT);
      });
      w.on('error', () => this.finish(EIO)); // a reader crashed: not a clean end of the connection
      this.exits.push(
        new Promise<void>((resolve) =>
          w.on('exit', () => {
            this.live--;
            if (this.live === 0) this.finish(0);
            resolve();
          }),
        ),
      );
      this.workers.push(w);
    }
  }

  view(slot: number): Buffer {
    return this.views[slot]!;
  }

  /** Gives a slot back to the readers. */
  release(slot: number): void {
    if (Atomics.load(this.ctl, slot) !== 1) throw new Error(`fuse: slot ${slot} released twice`);
    this.held--;
    Atomics.store(this.ctl, slot, 0);
    Atomics.add(this.ctl, this.gen, 1);
    Atomics.notify(this.ctl, this.gen, 1);
  }

  /** Writes one reply (all buffers as one message). */
  writeReply(bufs: Buffer | Buffer[]): WriteResult {
    if (this.fdClosed) return WriteResult.CLOSED;
    try {
      if (Buffer.isBuffer(bufs)) writeSync(this.fd, bufs);
      else writevSync(this.fd, bufs);
      return WriteResult.OK;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return WriteResult.GONE;
      if (code === 'ENODEV' || code === 'ECONNABORTED' || code === 'EBADF') return WriteResult.CLOSED;
      throw err;
    }
  }

  /** Writes a notification through the pool (it may wait on kernel locks). Resolves false if the kernel did not know the object (ENOENT). */
  writeNotify(buf: Buffer): Promise<boolean> {
    if (this.fdClosed) return Promise.resolve(false);
    return new Promise((resolve, reject) => {
      write(this.fd, buf, 0, buf.length, null, (err) => {
        if (!err) return resolve(true);
        const e = err as NodeJS.ErrnoException;
        if (e.code === 'ENOENT' || e.code === 'ENODEV' || e.code === 'EBADF') return resolve(false);
        reject(Object.assign(new Error(`fuse notify: ${e.message}`), { errno: Math.abs(e.errno ?? ENOENT), code: e.code }));
      });
    });
  }

  /** Asks the readers to stop (only effective while not mounted: a mounted device ends by unmount/abort). */
  requestStop(): void {
    Atomics.store(this.ctl, this.stop, 1);
    Atomics.add(this.ctl, this.gen, 1);
    Atomics.notify(this.ctl, this.gen);
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  private finish(errno: number): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.requestStop();
    // Readers that are still blocked return ENODEV on their own (the connection is gone).
    this.onClose(errno);
  }

  /** Closes the descriptor once the readers have stopped (closing it earlier would not wake them). */
  closeFd(): void {
    if (this.fdClosed) return;
    this.fdClosed = true;
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
  }

  /** Resolves when every reader thread has exited. */
  async joined(): Promise<void> {
    await Promise.all(this.exits);
  }
}
