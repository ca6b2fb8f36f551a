// The write buffer's memory budget: bytes held by buffered and flushing chunks. Writers that
// would exceed it wait until flushes release memory. What it counts must equal the bytes of
// the buffers it covers (checked by the write path, see WritePath.checkMemory).
import type { Gauge } from 'prom-client';
import { StatusCode, TierfsError } from '../common/status.js';

export class MemoryBudget {
  private usedBytes = 0;
  private waiters: Array<() => void> = [];

  constructor(
    readonly budget: number,
    private readonly gauge: Gauge,
    private readonly isClosed: () => boolean,
  ) {}

  get used(): number {
    return this.usedBytes;
  }

  /** Whether taking `need` more bytes must wait (an empty budget always admits one page). */
  mustWait(need: number): boolean {
    return need > 0 && this.usedBytes > 0 && this.usedBytes + need > this.budget;
  }

  /** At 70 % the oldest buffers start flushing. */
  get underPressure(): boolean {
    return this.usedBytes >= 0.7 * this.budget;
  }

  charge(bytes: number): void {
    this.usedBytes += bytes;
    this.check();
    this.gauge.set(this.usedBytes);
  }

  release(bytes: number): void {
    this.usedBytes -= bytes;
    this.check();
    this.gauge.set(this.usedBytes);
    this.wakeAll();
  }

  /** Waits until `need` bytes fit, calling `relieve` (start flushes) before each wait. */
  async waitFor(need: number, relieve: () => void): Promise<void> {
    while (this.usedBytes > 0 && this.usedBytes + need > this.budget) {
      if (this.isClosed()) throw new TierfsError(StatusCode.UNAVAILABLE, 's3 adaptor is closed');
      relieve();
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  wakeAll(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  private check(): void {
    if (!(this.usedBytes >= 0)) throw new TierfsError(StatusCode.INTERNAL, `invariant broken: write buffer memory ${this.usedBytes} < 0`);
  }
}
