// The write side of the adaptor: the write buffer (per inode, per chunk) under a memory
// budget; flushes that cut buffered chunks into block objects (BlockWriter) and commit them
// as slices through the SliceStore; truncates and masks (hole punch, zero range) committed
// as zero slices in issue order with the flushes; close/fsync waiting for what they must.
import type { Registry } from 'prom-client';
import type { Logger } from '../common/log.js';
import { StatusCode, TierfsError } from '../common/status.js';
import type { DiskCache } from '../diskcache/index.js';
import { counter, gauge } from '../diskcache/metrics-util.js';
import type { BlockCache } from './block-cache.js';
import { BlockWriter } from './block-writer.js';
import type { ChunkIdBatch } from './chunk-ids.js';
import type { ChunkCompactor } from './compaction.js';
import type { InodeState, InodeTable } from './inode-state.js';
import { sliceBlockKey } from './keys.js';
import { shadowedSlices, sliceObjects } from './layout.js';
import { MemoryBudget } from './memory-budget.js';
import type { ObjectStore } from './object-store.js';
import type { ReadPath } from './read-path.js';
import { runLimited } from './run-limited.js';
import type { FileAttrs, Slice, SliceStore } from './types.js';
import { DirtyChunk, PagePool, type PendingData, type PendingZero } from './write-buffer.js';

export interface WritePathDeps {
  fsId: number;
  chunkSize: number;
  blockSize: number;
  store: ObjectStore;
  sliceStore: SliceStore;
  disk: DiskCache | null;
  inodes: InodeTable;
  reads: ReadPath;
  chunkIds: ChunkIdBatch;
  compactor: ChunkCompactor;
  memBudgetBytes: number;
  flushAgeMs: number;
  writeback: boolean;
  compactThreshold: number;
  blockWriteConcurrency: number;
  flushRunBytes: number;
  s3TimeoutMs: number;
  /** --cache-group-write: blocks put to S3 are also handed to the cache group. */
  groupWrite: BlockCache | null;
  isClosed(): boolean;
  registry?: Registry;
  log: Logger;
}

const RETRYABLE = new Set<string>([StatusCode.UNAVAILABLE, StatusCode.TIMEOUT, StatusCode.NOT_LEADER, StatusCode.BUSY, StatusCode.STALE_EPOCH]);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class WritePath {
  private readonly cs: number;
  private readonly bs: number;
  /** Blocks per chunk. */
  private readonly bpc: number;
  readonly memory: MemoryBudget;
  private readonly pages: PagePool;
  private readonly blocks: BlockWriter;
  private readonly inodes: InodeTable;
  private readonly log: Logger;
  readonly counts = { flushes: 0, flushedBytes: 0 };
  private readonly metrics;

  constructor(private readonly deps: WritePathDeps) {
    this.cs = deps.chunkSize;
    this.bs = deps.blockSize;
    this.bpc = deps.chunkSize / deps.blockSize;
    this.inodes = deps.inodes;
    this.log = deps.log;
    this.metrics = {
      flushes: counter(deps.registry, 'tierfs_s3adaptor_flushes_total', 'write buffer flushes committed'),
      flushedBytes: counter(deps.registry, 'tierfs_s3adaptor_flushed_bytes_total', 'bytes flushed into block objects'),
    };
    this.memory = new MemoryBudget(
      deps.memBudgetBytes,
      gauge(deps.registry, 'tierfs_s3adaptor_write_buffer_bytes', 'bytes held by write buffers (dirty and flushing)'),
      deps.isClosed,
    );
    // Enough idle pages for a chunk being written and two flushing (at most a quarter of the budget).
    this.pages = new PagePool(this.bs, Math.min(3 * this.bpc, Math.floor(deps.memBudgetBytes / 4 / this.bs)));
    this.blocks = new BlockWriter({
      store: deps.store,
      disk: deps.disk,
      writeback: deps.writeback,
      s3TimeoutMs: deps.s3TimeoutMs,
      groupWrite: deps.groupWrite,
      log: deps.log,
      isClosed: deps.isClosed,
      directPuts: counter(deps.registry, 'tierfs_s3adaptor_direct_puts_total', 'blocks put straight to S3 (no writeback, or the disk cache full or absent)'),
      outageStaged: counter(deps.registry, 'tierfs_s3adaptor_outage_staged_blocks_total', 'blocks S3 did not take within the S3 timeout, staged on the local disk instead'),
    });
  }

  get directPuts(): number {
    return this.blocks.directPuts;
  }

  get outageStaged(): number {
    return this.blocks.outageStaged;
  }

  // ---- write buffer and memory budget ----

  async write(st: InodeState, offset: number, data: Buffer): Promise<void> {
    const len = data.length;
    for (let pos = 0; pos < data.length; ) {
      const fileOff = offset + pos;
      const idx = Math.floor(fileOff / this.cs);
      const cOff = fileOff - idx * this.cs;
      const n = Math.min(data.length - pos, (Math.floor(cOff / this.bs) + 1) * this.bs - cOff); // at most one new page per step
      let chunk = st.dirty.get(idx);
      const need = chunk ? chunk.newPagesFor(cOff, cOff + n) * this.bs : this.bs;
      if (this.memory.mustWait(need)) {
        await this.memory.waitFor(need, () => this.relievePressure());
        // The caller's buffer may be a FUSE request's that was detached while we waited (the
        // request timed out and was answered): never buffer what is no longer there.
        if (data.length !== len) throw new TierfsError(StatusCode.TIMEOUT, 'write buffer went away while waiting for memory');
        continue; // the chunk may have been flushed meanwhile
      }
      if (!chunk) {
        chunk = new DirtyChunk(this.bs, this.pages);
        st.dirty.set(idx, chunk);
      }
      const before = chunk.bytes;
      chunk.write(cOff, data.subarray(pos, pos + n));
      this.memory.charge(chunk.bytes - before);
      pos += n;
      if (chunk.isFull(this.cs) || this.runComplete(chunk, cOff + n)) this.background(st, this.flushChunks(st, [idx]));
    }
    if (this.memory.underPressure) this.relievePressure();
  }

  /**
   * Whether a sequential writer just completed a run worth flushing: one dirty range that ends
   * where this step ended, on a block boundary, and spans flushRunBytes. Later writes to the
   * chunk start a new buffer, so the flushed slices tile the chunk on block boundaries.
   */
  private runComplete(chunk: DirtyChunk, end: number): boolean {
    if (chunk.ranges.length !== 1 || end % this.bs !== 0) return false;
    const [s, e] = chunk.ranges[0]!;
    return e === end && e - s >= this.deps.flushRunBytes;
  }

  /** Flushes the oldest buffered chunks until at most half the budget is left dirty. */
  private relievePressure(): void {
    const all: Array<{ st: InodeState; idx: number; chunk: DirtyChunk }> = [];
    let dirty = 0;
    for (const st of this.inodes.values()) {
      for (const [idx, chunk] of st.dirty) {
        all.push({ st, idx, chunk });
        dirty += chunk.bytes;
      }
    }
    all.sort((a, b) => a.chunk.firstWriteAt - b.chunk.firstWriteAt);
    for (const { st, idx, chunk } of all) {
      if (dirty <= this.memory.budget / 2 && this.memory.used < this.memory.budget) break;
      dirty -= chunk.bytes;
      this.background(st, this.flushChunks(st, [idx]));
    }
  }

  /** Periodic: flushes buffers older than flushAgeMs, forgets idle inodes, checks the memory count. */
  tick(): void {
    const now = Date.now();
    this.pages.trim(10_000);
    for (const [ino, st] of this.inodes.entries()) {
      const old = [...st.dirty].filter(([, c]) => now - c.firstWriteAt >= this.deps.flushAgeMs).map(([idx]) => idx);
      if (old.length > 0) this.background(st, this.flushChunks(st, old));
      if (st.idle && now - st.lastUsed > 60_000) this.inodes.delete(ino); // bound the slice cache
    }
    try {
      this.checkMemory();
    } catch (err) {
      this.log.error({ err: String(err) }, 'write buffer accounting is wrong');
    }
  }

  /** Buffered (dirty) bytes and flushes in flight over all inodes. */
  buffered(): { dirty: number; pending: number; pendingBytes: number } {
    let dirty = 0;
    let pending = 0;
    let pendingBytes = 0;
    for (const st of this.inodes.values()) {
      for (const c of st.dirty.values()) dirty += c.bytes;
      pending += st.pending.length;
      for (const p of st.pending) if (p.kind === 'data') pendingBytes += p.bytes;
    }
    return { dirty, pending, pendingBytes };
  }

  /** The budget's count is exactly the bytes of the buffers it covers: dirty chunks and flushes not yet released. */
  checkMemory(): void {
    const { dirty, pendingBytes } = this.buffered();
    if (this.memory.used !== dirty + pendingBytes) {
      throw new TierfsError(StatusCode.INTERNAL, `invariant broken: write buffer memory ${this.memory.used} != ${dirty} dirty + ${pendingBytes} flushing`);
    }
  }

  /** Errors of flushes nobody waits for are kept and reported by the next flush/fsync. */
  background(st: InodeState, p: Promise<void>): void {
    p.catch((err: unknown) => {
      st.error ??= err instanceof Error ? err : new Error(String(err));
      this.log.warn({ ino: st.ino, err: String(err) }, 'background flush failed');
    });
  }

  private track(st: InodeState, p: Promise<void>): Promise<void> {
    st.inFlight.add(p);
    p.catch(() => {}).finally(() => st.inFlight.delete(p));
    return p;
  }

  // ---- flush: buffer -> block objects -> slices ----

  /** Snapshots dirty chunks (all when idxs is omitted) and commits them; the order of ids is taken now. */
  flushChunks(st: InodeState, idxs?: number[], attrs?: FileAttrs): Promise<void> {
    const chunks = new Map<number, DirtyChunk>();
    let bytes = 0;
    let ranges = 0;
    for (const idx of idxs ?? [...st.dirty.keys()]) {
      const c = st.dirty.get(idx);
      if (!c) continue;
      st.dirty.delete(idx);
      if (c.ranges.length === 0) {
        this.memory.release(c.bytes);
        continue;
      }
      chunks.set(idx, c);
      bytes += c.bytes;
      ranges += c.ranges.length;
    }
    if (chunks.size === 0) return Promise.resolve();
    const entry: PendingData = { kind: 'data', chunks, bytes, committed: false, holds: [], recyclable: false };
    st.pending.push(entry);
    return this.track(st, this.commitData(st, entry, this.deps.chunkIds.reserve(ranges, this.newestChunkId(st)), attrs));
  }

  /** The newest chunk id among the inode's committed slices (other mounts' included): new ids must be above it. */
  async newestChunkId(st: InodeState): Promise<number> {
    let max = 0;
    for (const list of (await this.deps.reads.loadSlices(st)).values()) for (const s of list) if (s.chunkId > max) max = s.chunkId;
    return max;
  }

  private async commitData(st: InodeState, entry: PendingData, idsP: Promise<number[]>, attrs?: FileAttrs): Promise<void> {
    const deadline = this.blocks.deadline();
    try {
      const ids = await idsP;
      let k = 0;
      const added = new Map<number, Slice[]>();
      const writes: Array<() => Promise<void>> = [];
      for (const [idx, chunk] of entry.chunks) {
        const list: Slice[] = [];
        for (const [s, e] of chunk.ranges) {
          const slice: Slice = { chunkId: ids[k++]!, compaction: 0, offset: s, len: e - s, size: e - s, zero: false };
          list.push(slice);
          for (const obj of sliceObjects(slice, this.bs)) {
            const key = sliceBlockKey(this.deps.fsId, st.ino, idx, this.bpc, slice, obj.blockIndex);
            writes.push(() => this.blocks.store(st, entry.holds, key, chunk.view(obj.chunkStart, obj.chunkStart + obj.size), deadline));
          }
        }
        added.set(idx, list);
      }
      await runLimited(writes, this.deps.blockWriteConcurrency);
      entry.recyclable = true; // every block write settled (runLimited waits for all)
      await this.appendSlices(st.ino, added, attrs);
      st.addCommitted(added);
      this.counts.flushes++;
      const flushed = [...added.values()].flat().reduce((n, s) => n + s.len, 0);
      this.counts.flushedBytes += flushed;
      this.metrics.flushes.inc();
      this.metrics.flushedBytes.inc(flushed);
      this.maybeCompact(st, [...added.keys()]);
    } finally {
      // On failure the data is dropped (the error reaches the next flush/fsync) so later
      // entries are not held back forever.
      entry.committed = true;
      this.releaseCommitted(st);
    }
  }

  /** One block of an O_APPEND run (append.ts): stored as a flush stores its blocks. */
  storeBlock(st: InodeState, key: string, body: Buffer): Promise<void> {
    return this.blocks.store(st, [], key, body, this.blocks.deadline());
  }

  async appendSlices(ino: number, added: Map<number, Slice[]>, attrs?: FileAttrs): Promise<void> {
    const store = this.deps.sliceStore;
    for (let attempt = 0; ; attempt++) {
      try {
        if (attrs && store.appendSlicesAndAttrs) await store.appendSlicesAndAttrs(ino, added, attrs);
        else await store.appendSlices(ino, added);
        return;
      } catch (err) {
        if (this.deps.isClosed() || attempt >= 30 || !(err instanceof TierfsError && RETRYABLE.has(err.code))) throw err;
        await sleep(Math.min(2_000, 50 * 2 ** Math.min(attempt, 6)));
      }
    }
  }

  private releaseCommitted(st: InodeState): void {
    while (st.pending[0]?.committed) {
      const e = st.pending.shift()!;
      if (e.kind === 'data') {
        this.memory.release(e.bytes);
        this.recycle(e);
      }
    }
  }

  /** Pages of a flush that is out of st.pending (no new reader finds it) go back to the pool. */
  private recycle(e: PendingData): void {
    if (!e.recyclable) return; // a failed flush may still have block writes using them: leave them to GC
    const give = () => {
      for (const c of e.chunks.values()) this.pages.give(c.pages.values());
    };
    if (e.holds.length === 0) give();
    else void Promise.allSettled(e.holds).then(give);
  }

  maybeCompact(st: InodeState, idxs: number[]): void {
    if (this.deps.isClosed()) return;
    if (!st.slices) {
      // Slice counts are known only with the slices cached: load them once, then check.
      this.deps.reads.loadSlices(st).then(
        () => this.maybeCompact(st, idxs),
        (err: unknown) => this.log.debug({ ino: st.ino, err: String(err) }, 'slice load for compaction check failed'),
      );
      return;
    }
    const threshold = this.deps.compactThreshold;
    for (const idx of idxs) {
      const list = st.slices.get(idx) ?? [];
      if ((threshold > 0 && list.length > threshold) || shadowedSlices(list).length > 0) this.deps.compactor.schedule(st.ino, idx);
    }
  }

  // ---- close-to-open and fsync ----

  /** Waits for every flush of the inode issued so far (after starting one for its dirty data). */
  async settle(st: InodeState): Promise<void> {
    this.background(st, this.flushChunks(st));
    await Promise.allSettled([...st.inFlight]);
    if (st.error) {
      const err = st.error;
      st.error = null;
      throw err;
    }
  }

  async flush(st: InodeState): Promise<void> {
    await this.settle(st);
    if (!this.deps.writeback) await Promise.all([...st.uploads]);
  }

  /** See S3Adaptor.flushWithAttrs. */
  async flushWithAttrs(st: InodeState, attrs: FileAttrs): Promise<boolean> {
    const buffered = [...st.dirty.values()].some((c) => c.ranges.length > 0);
    if (!buffered || !this.deps.sliceStore.appendSlicesAndAttrs || st.inFlight.size > 0 || st.error) {
      await this.flush(st);
      return false;
    }
    this.background(st, this.flushChunks(st, undefined, attrs));
    await this.flush(st);
    return true;
  }

  // ---- truncate and masks ----

  async truncate(st: InodeState, oldSize: number, newSize: number): Promise<void> {
    for (const [idx, c] of [...st.dirty]) {
      const base = idx * this.cs;
      if (base >= newSize) {
        st.dirty.delete(idx);
        this.memory.release(c.bytes);
      } else if (base + this.cs > newSize) {
        this.memory.release(c.truncate(newSize - base));
      }
    }
    if (newSize === oldSize) return;
    // Shrink masks everything from newSize on; grow masks [oldSize, newSize) where data exists.
    const entry: PendingZero = { kind: 'zero', start: Math.min(oldSize, newSize), end: newSize < oldSize ? Infinity : newSize, committed: false };
    st.pending.push(entry);
    await this.track(st, this.commitZero(st, entry, this.deps.chunkIds.reserve(1, this.newestChunkId(st))));
  }

  /** [start, end) reads as zeros: buffered data of the range is flushed first, so the mask (committed after it) hides it. */
  async mask(st: InodeState, start: number, end: number): Promise<void> {
    const idxs = [...st.dirty.keys()].filter((idx) => idx * this.cs < end && (idx + 1) * this.cs > start);
    if (idxs.length > 0) this.background(st, this.flushChunks(st, idxs)); // takes its ids before the mask's
    const entry: PendingZero = { kind: 'zero', start, end, committed: false };
    st.pending.push(entry);
    await this.track(st, this.commitZero(st, entry, this.deps.chunkIds.reserve(1, this.newestChunkId(st))));
  }

  private async commitZero(st: InodeState, entry: PendingZero, idsP: Promise<number[]>): Promise<void> {
    try {
      const [id] = await idsP;
      const committed = await this.deps.reads.loadSlices(st);
      const added = new Map<number, Slice[]>();
      const first = Math.floor(entry.start / this.cs);
      const candidates = new Set<number>([...committed.keys()].filter((i) => i >= first));
      for (const e of st.pending) {
        if (e === entry) break;
        if (e.kind === 'data') for (const i of e.chunks.keys()) if (i >= first) candidates.add(i);
      }
      for (const idx of candidates) {
        const base = idx * this.cs;
        const s = Math.max(0, entry.start - base);
        const e = Math.min(this.cs, entry.end - base);
        if (e <= s || !this.chunkHasData(st, entry, idx, s, e, committed.get(idx) ?? [])) continue;
        added.set(idx, [{ chunkId: id!, compaction: 0, offset: s, len: e - s, size: 0, zero: true }]);
      }
      if (added.size > 0) {
        await this.appendSlices(st.ino, added);
        st.addCommitted(added);
      }
    } finally {
      entry.committed = true;
      this.releaseCommitted(st);
    }
  }

  /** Whether anything older than `entry` holds data in [s, e) of the chunk. */
  private chunkHasData(st: InodeState, entry: PendingZero, idx: number, s: number, e: number, committed: Slice[]): boolean {
    if (committed.some((x) => !x.zero && x.offset < e && x.offset + x.len > s)) return true;
    for (const p of st.pending) {
      if (p === entry) break;
      if (p.kind === 'data' && p.chunks.get(idx)?.ranges.some(([a, b]) => a < e && b > s)) return true;
    }
    return false;
  }
}
