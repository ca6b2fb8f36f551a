// Reply buffers of READ, reused. A READ reply is header + data in one buffer the filesystem
// reads into; allocating it costs more than the rest of a cached 4 KiB read (a 4,112-byte
// Buffer is past Node's small-buffer pool: ~2.5 us and GC pressure per request), and 1 MiB
// replies cost page faults on first touch. A buffer comes back only after its reply was
// written (the kernel copied it); one whose read was interrupted is never reused, since the
// filesystem may still fill it after the caller got EINTR.
export class ReplyPool {
  private readonly free = new Map<number, Buffer[]>();
  private pooledBytes = 0;

  constructor(
    /** Bytes kept idle at most, over all sizes. */
    private readonly maxBytes: number,
    /** Buffers kept per size at most (about the requests that run at once). */
    private readonly perSize: number,
  ) {}

  take(size: number): Buffer {
    const b = this.free.get(size)?.pop();
    if (!b) return Buffer.allocUnsafe(size);
    this.pooledBytes -= size;
    return b;
  }

  give(buf: Buffer): void {
    const size = buf.length;
    if (this.pooledBytes + size > this.maxBytes) return;
    let list = this.free.get(size);
    if (!list) {
      list = [];
      this.free.set(size, list);
    }
    if (list.length >= this.perSize) return;
    list.push(buf);
    this.pooledBytes += size;
  }

  /** Idle bytes held (for tests and stats). */
  get bytes(): number {
    return this.pooledBytes;
  }
}
