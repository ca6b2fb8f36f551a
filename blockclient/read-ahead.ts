// Read-ahead for sequential readers of a volume. A device read through the loop driver is one
// request at a time for `fio --iodepth=1` or `dd`: each 1 MiB read waiting for one chunkserver
// round trip leaves the other chunkservers idle. Once two reads in a row are contiguous, the
// next `windowBytes` are fetched in 1 MiB pieces in parallel (pieces of different chunks go to
// different copyset leaders) and later reads are answered from them.
//
// Coherence: the client is the volume's only writer (one read-write attach); every write
// drops the pieces it overlaps (`invalidate`), also while they are being fetched, so a piece
// never returns bytes older than a write acknowledged before the read.
const PIECE = 1 << 20;

export interface ReadAheadOptions {
  windowBytes: number;
  /** Reads [offset, offset + length) from the chunkservers (length <= 1 MiB, in one chunk or not). */
  fetch(offset: number, length: number): Promise<Buffer>;
  size: number;
}

export class ReadAhead {
  private nextOffset = -1;
  private streak = 0;
  private readonly pieces = new Map<number, Promise<Buffer>>();
  /** Reads answered from read-ahead pieces (metrics, tests). */
  hits = 0;

  constructor(private readonly opts: ReadAheadOptions) {}

  /**
   * Copies [offset, offset + target.length) into `target` when read-ahead holds it (true), and
   * starts fetching ahead when the reader is sequential. False: read it yourself.
   */
  async read(offset: number, target: Buffer): Promise<boolean> {
    if (this.opts.windowBytes <= 0) return false;
    const sequential = offset === this.nextOffset;
    this.streak = sequential ? this.streak + 1 : 0;
    this.nextOffset = offset + target.length;
    if (this.streak === 0) {
      this.pieces.clear();
      return false;
    }
    // Drop what the reader has passed, then keep the window ahead full.
    const first = Math.floor(offset / PIECE) * PIECE;
    for (const k of this.pieces.keys()) if (k < first) this.pieces.delete(k);
    for (let p = first; p < Math.min(this.opts.size, offset + target.length + this.opts.windowBytes); p += PIECE) {
      if (!this.pieces.has(p)) this.start(p);
    }
    const last = Math.floor((offset + target.length - 1) / PIECE) * PIECE;
    const parts: Array<{ at: number; piece: Promise<Buffer> }> = [];
    for (let p = first; p <= last; p += PIECE) {
      const piece = this.pieces.get(p);
      if (!piece) return false;
      parts.push({ at: p, piece });
    }
    let bufs: Buffer[];
    try {
      bufs = await Promise.all(parts.map((x) => x.piece));
    } catch {
      return false; // a failed fetch ahead: the reader's own read reports any real error
    }
    // A write during the fetch dropped the piece: its bytes may be older than that write.
    if (parts.some((x) => this.pieces.get(x.at) !== x.piece)) return false;
    parts.forEach((x, i) => {
      const b = bufs[i]!;
      const from = Math.max(offset, x.at);
      const to = Math.min(offset + target.length, x.at + b.length);
      b.copy(target, from - offset, from - x.at, to - x.at);
    });
    this.hits++;
    return true;
  }

  /** A write of [offset, offset + length): pieces holding any of it are dropped. */
  invalidate(offset: number, length: number): void {
    if (this.pieces.size === 0) return;
    for (const k of this.pieces.keys()) if (k < offset + length && k + PIECE > offset) this.pieces.delete(k);
  }

  private start(p: number): void {
    const piece = this.opts.fetch(p, Math.min(PIECE, this.opts.size - p));
    piece.catch(() => undefined);
    this.pieces.set(p, piece);
  }
}
