// The uploader: drains staged blocks to S3 oldest first, retrying with backoff for as long as
// S3 is down (the block stays staged meanwhile), then hands the block to the read cache.
import { join } from 'node:path';
import PQueue from 'p-queue';
import type { Logger } from '../common/log.js';
import { StatusCode, TierfsError } from '../common/status.js';
import { readExact } from './files.js';
import type { DiskCacheMetrics } from './metrics.js';
import type { StagedBlock, Staging } from './staging.js';

/** Where uploads go: the ObjectStore of s3adaptor/ fits this shape. */
export interface BlockSink {
  /** Must not keep `body` once the promise settles: upload read-back buffers are reused. */
  put(key: string, body: Buffer): Promise<void>;
}

export interface UploaderOptions {
  concurrency: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /**
   * Uploads of freshly staged blocks wait until nothing was staged for this long (0: at
   * once), so a burst of writes has the CPU and the disk to itself and goes at local disk
   * speed; its backlog uploads right after.
   */
  holdMs: number;
  /** ... but not once this many bytes are staged: a long stream then uploads as it writes. */
  holdBytes: number;
}

export class Uploader {
  private readonly queue: PQueue;
  private readonly closing = new AbortController();
  private closed = false;
  readonly counts = { uploadedBlocks: 0, uploadedBytes: 0, uploadErrors: 0 };
  private readonly samples: Array<{ at: number; bytes: number }> = [];
  /**
   * Read-back buffers of finished uploads, reused: a fresh 4 MiB buffer per upload costs page
   * faults and V8 mark-compacts (external memory). At most `concurrency` are kept.
   */
  private buffers: Buffer[] = [];
  /** When a block was last staged by a writer (blocks re-queued at start do not count). */
  private lastStagedAt = 0;
  /** The backlog of the current burst passed holdBytes: it uploads as it writes until the burst ends. */
  private burstReleased = false;
  /** drain() callers waiting: nothing is held back while someone waits for the uploads. */
  private draining = 0;
  /** Uploads waiting out the hold, woken early by drain() and close(). */
  private readonly heldUploads = new Set<() => void>();

  constructor(
    private readonly store: BlockSink,
    private readonly staging: Staging,
    private readonly opts: UploaderOptions,
    /** The block is in S3 and out of staging: it stays as read cache. */
    private readonly onUploaded: (key: string, size: number) => Promise<void>,
    private readonly metrics: DiskCacheMetrics,
    private readonly log: Logger,
  ) {
    this.queue = new PQueue({ concurrency: opts.concurrency });
  }

  set holdBytes(n: number) {
    this.opts.holdBytes = n;
  }

  set concurrency(n: number) {
    this.opts.concurrency = n;
    this.queue.concurrency = n;
  }

  /** `fresh`: just staged by a writer (its upload may be held back, see holdMs). */
  enqueue(key: string, block: StagedBlock, fresh = false): void {
    if (fresh) {
      const now = Date.now();
      if (now - this.lastStagedAt >= this.opts.holdMs) this.burstReleased = false; // a new burst
      this.lastStagedAt = now;
    }
    void this.queue.add(() => this.upload(key, block));
    if (this.staging.bytes >= this.opts.holdBytes && !this.burstReleased) {
      this.burstReleased = true; // too big to hold: uploads go on beside the writes
      this.wakeHeld();
    }
  }

  /** Whether uploads are being held back for a burst of writes right now. */
  get holdingBack(): boolean {
    return this.holdLeft() > 0;
  }

  private holdLeft(): number {
    if (this.opts.holdMs <= 0 || this.closed || this.draining > 0 || this.burstReleased) return 0;
    return this.lastStagedAt + this.opts.holdMs - Date.now();
  }

  /** Waits while writers are staging (see holdMs); re-checked after each wait, since writes may go on. */
  private async holdBack(): Promise<void> {
    for (let left = this.holdLeft(); left > 0; left = this.holdLeft()) {
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(t);
          this.heldUploads.delete(wake);
          resolve();
        };
        const t = setTimeout(wake, left);
        this.heldUploads.add(wake);
      });
    }
  }

  private wakeHeld(): void {
    for (const wake of [...this.heldUploads]) wake();
  }

  private async upload(key: string, block: StagedBlock): Promise<void> {
    await this.holdBack();
    for (let attempt = 0; !this.closed && !block.cancelled; attempt++) {
      const spare = this.buffers.pop();
      const target = spare && spare.length >= block.size ? spare : Buffer.allocUnsafe(block.size);
      try {
        const data = await readExact(join(this.staging.writeDir, key), block.size, 0, target);
        if (block.cancelled) break;
        block.running = this.store.put(key, data);
        await block.running;
        if (block.cancelled) break;
        await this.onUploaded(key, block.size);
        this.counts.uploadedBlocks++;
        this.counts.uploadedBytes += block.size;
        this.metrics.uploaded(block.size);
        this.samples.push({ at: Date.now(), bytes: block.size });
        block.resolve();
        return;
      } catch (err) {
        if (block.cancelled) break;
        this.counts.uploadErrors++;
        this.metrics.uploadErrors.inc();
        const delay = Math.min(this.opts.retryMaxMs, this.opts.retryBaseMs * 2 ** Math.min(attempt, 20));
        this.log.warn({ key, attempt, delay, err: err instanceof Error ? err.message : String(err) }, 'disk cache: upload failed, will retry');
        await this.sleep(delay);
      } finally {
        // Every read and the put are settled here (a timed-out put's socket is destroyed).
        if (target.length >= 2 ** 20 && this.buffers.length < this.opts.concurrency) this.buffers.push(target);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const signal = this.closing.signal;
      if (signal.aborted) return resolve();
      const done = () => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Bytes per second uploaded over the last ~10 s. */
  bytesPerSec(now = Date.now()): number {
    while (this.samples.length > 0 && now - this.samples[0]!.at > 10_000) this.samples.shift();
    return this.samples.reduce((s, x) => s + x.bytes, 0) / 10;
  }

  pause(): void {
    this.queue.pause();
  }

  resume(): void {
    this.queue.start();
  }

  /** Resolves when nothing is staged (every block uploaded). */
  async drain(): Promise<void> {
    this.queue.start();
    this.draining++;
    this.wakeHeld();
    try {
      while (this.staging.count > 0) {
        if (this.closed) throw new TierfsError(StatusCode.UNAVAILABLE, 'disk cache closed with blocks still staged');
        await Promise.allSettled([...this.staging.values()].map((b) => b.done));
      }
    } finally {
      this.draining--;
    }
  }

  /** Stops: attempts in flight end, queued ones are dropped (their blocks stay staged on disk). */
  async close(): Promise<void> {
    this.closed = true;
    this.closing.abort();
    this.wakeHeld();
    this.queue.clear();
    await this.queue.onIdle();
  }
}
