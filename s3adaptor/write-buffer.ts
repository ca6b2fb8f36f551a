// Buffered, not yet committed data of one inode. Each chunk keeps block-sized pages and the
// merged dirty ranges over them; at flush a range becomes a slice and each block piece of
// it is a subarray of a page (no copy). A snapshot handed to a flush is never written again.

/**
 * Recycles block-sized pages. A fresh 4 MiB Buffer costs page faults on first touch, and every
 * ~64 MiB of new external memory makes V8 run a mark-compact (22 of them, ~1.5 s, in a 512 MiB
 * write). A page comes back only once nothing can read it any more: its flush committed, no
 * block write still holds a view of it, and readers copy buffered bytes synchronously.
 */
export class PagePool {
  private free: Buffer[] = [];
  private lastTake = Date.now();

  constructor(
    readonly pageSize: number,
    private readonly maxPages: number,
  ) {}

  take(): Buffer {
    this.lastTake = Date.now();
    return this.free.pop() ?? Buffer.allocUnsafe(this.pageSize); // only bytes inside dirty ranges are ever read
  }

  give(pages: Iterable<Buffer>): void {
    for (const p of pages) {
      if (this.free.length >= this.maxPages) return;
      if (p.length === this.pageSize && p.byteOffset === 0) this.free.push(p);
    }
  }

  /** Lets idle memory go once nothing was written for idleMs. */
  trim(idleMs: number): void {
    if (this.free.length > 0 && Date.now() - this.lastTake >= idleMs) this.free = [];
  }

  get idlePages(): number {
    return this.free.length;
  }
}

/** Dirty data of one chunk. */
export class DirtyChunk {
  readonly pages = new Map<number, Buffer>();
  /** Sorted, disjoint, non-adjacent [start, end) ranges (chunk offsets). */
  ranges: Array<[number, number]> = [];
  readonly firstWriteAt = Date.now();
  private readonly pool: PagePool;

  constructor(
    private readonly blockSize: number,
    pool?: PagePool,
  ) {
    this.pool = pool ?? new PagePool(blockSize, 0);
  }

  get bytes(): number {
    return this.pages.size * this.blockSize;
  }

  /** Pages a write of [start, end) would add (for the memory budget). */
  newPagesFor(start: number, end: number): number {
    let n = 0;
    for (let i = Math.floor(start / this.blockSize); i * this.blockSize < end; i++) if (!this.pages.has(i)) n++;
    return n;
  }

  write(start: number, data: Buffer): void {
    const end = start + data.length;
    for (let pos = start; pos < end; ) {
      const i = Math.floor(pos / this.blockSize);
      let page = this.pages.get(i);
      if (!page) {
        page = this.pool.take();
        this.pages.set(i, page);
      }
      const e = Math.min(end, (i + 1) * this.blockSize);
      data.copy(page, pos - i * this.blockSize, pos - start, e - start);
      pos = e;
    }
    this.addRange(start, end);
  }

  private addRange(start: number, end: number): void {
    const out: Array<[number, number]> = [];
    let s = start;
    let e = end;
    let placed = false;
    for (const [a, b] of this.ranges) {
      if (b < s) out.push([a, b]);
      else if (a > e) {
        if (!placed) out.push([s, e]), (placed = true);
        out.push([a, b]);
      } else {
        s = Math.min(s, a);
        e = Math.max(e, b);
      }
    }
    if (!placed) out.push([s, e]);
    this.ranges = out;
  }

  /** Drops everything at or beyond `limit`; returns the bytes of pages freed. */
  truncate(limit: number): number {
    this.ranges = this.ranges.filter(([a]) => a < limit).map(([a, b]): [number, number] => [a, Math.min(b, limit)]);
    let freed = 0;
    for (const i of [...this.pages.keys()]) {
      if (i * this.blockSize >= limit) {
        this.pages.delete(i);
        freed += this.blockSize;
      }
    }
    return freed;
  }

  isFull(chunkSize: number): boolean {
    return this.ranges.length === 1 && this.ranges[0]![0] === 0 && this.ranges[0]![1] === chunkSize;
  }

  /** A view of [start, end) inside one page (the range must not cross a block boundary). */
  view(start: number, end: number): Buffer {
    const i = Math.floor(start / this.blockSize);
    const page = this.pages.get(i)!;
    return page.subarray(start - i * this.blockSize, end - i * this.blockSize);
  }

  /** Copies [start, end) (inside dirty ranges) into target at targetOffset. */
  copyOut(start: number, end: number, target: Buffer, targetOffset: number): void {
    for (let pos = start; pos < end; ) {
      const i = Math.floor(pos / this.blockSize);
      const e = Math.min(end, (i + 1) * this.blockSize);
      this.pages.get(i)!.copy(target, targetOffset + pos - start, pos - i * this.blockSize, e - i * this.blockSize);
      pos = e;
    }
  }
}

/** Data handed to a flush: readable until committed and every earlier entry is committed. */
export interface PendingData {
  kind: 'data';
  chunks: Map<number, DirtyChunk>;
  bytes: number;
  committed: boolean;
  /** Work still holding views of the pages after the commit (caching written blocks). */
  holds: Array<Promise<unknown>>;
  /** Set when every block write finished: the pages may then go back to the pool. */
  recyclable: boolean;
}

/** A truncate's mask: from `start` (file offset) to `end` reads as zeros until committed. */
export interface PendingZero {
  kind: 'zero';
  start: number;
  end: number;
  committed: boolean;
}

export type PendingEntry = PendingData | PendingZero;
