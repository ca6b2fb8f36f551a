// A local batch of chunk ids, refilled from the allocator (the MDS) only when used up, so a
// flush costs no round trip. Reservations are served strictly in call order: a flush or
// truncate that reserves first gets smaller ids, which is what orders slices in a chunk.
// Across mounts, each with its own batch, a later write could get a smaller id than another
// mount's earlier one and lose to it: a reservation therefore takes a floor (the newest
// chunk id already in the inode) and, when the batch is not above it, drops the rest of the
// batch for a fresh one (the MDS hands out increasing ids, so it is above every id in use).
import { StatusCode, TierfsError } from '../common/status.js';
import type { ChunkIdAllocator } from './types.js';

export class ChunkIdBatch {
  private next = 0;
  private end = 0;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly allocator: ChunkIdAllocator,
    private readonly batchSize = 1000,
  ) {}

  /**
   * Reserves `count` ids, all above `floor` when given; the reservation's place in line is
   * taken synchronously (the floor is awaited in turn).
   */
  reserve(count: number, floor?: Promise<number>): Promise<number[]> {
    const p = this.chain.then(async () => {
      const min = floor ? await floor : -1;
      if (this.next <= min) this.next = this.end;
      const ids: number[] = [];
      while (ids.length < count) {
        if (this.next >= this.end) await this.refill(Math.max(this.batchSize, count - ids.length));
        ids.push(this.next++);
      }
      return ids;
    });
    this.chain = p.catch(() => {});
    return p;
  }

  private async refill(count: number): Promise<void> {
    const got = await this.allocator.allocate(count);
    if (!(got.count > 0) || got.start < this.end) {
      throw new TierfsError(StatusCode.INTERNAL, `chunk id allocator returned ${got.count} ids from ${got.start}, below the last id ${this.end - 1}`);
    }
    this.next = got.start;
    this.end = got.start + got.count;
  }
}
