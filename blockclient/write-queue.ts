// The block client's queue of writes not yet committed: whole 4 KiB blocks of the volume,
// grouped per copyset and sent as batches (one WriteChunks RPC, one Raft entry each), a few
// batches in flight per copyset. A write is "queued" as soon as its blocks are here and
// "committed" once the batch carrying its newest bytes is on a Raft majority; the volume
// client acknowledges at one or the other (write-through or write-back, see volume-client.ts).
//
// Ordering: a block is in at most one batch in flight; a newer write to it waits in the queue
// until that batch is answered (a retry after a leader change can not reorder two versions of
// one block). A queued block written again is replaced, its waiters moved to the newer bytes
// (they are durable when those are). Reads see every block here (`overlay`), so a read after
// a write returns its bytes whether it is committed or not.
//
// Limits: at most `maxDirtyBytes` queued or in flight (writers wait for room; concurrent
// writers may each overshoot by one write), batches of at most `maxBatchBytes`.
import { StatusCode, TierfsError } from '../common/status.js';
import type { ChunkWrite } from '../chunkserver/chunk-client.js';

export const BLOCK = 4096;

/** One 4 KiB block of the volume and where it lives. */
export interface BlockWrite {
  /** Volume block number (volume offset / 4096). */
  vb: number;
  poolId: number;
  copysetId: number;
  chunkId: number;
  chunkOffset: number;
  data: Buffer;
}

interface Waiter {
  resolve: () => void;
  reject: (e: Error) => void;
}

interface Queued extends BlockWrite {
  waiters: Waiter[];
}

interface CopysetQueue {
  poolId: number;
  copysetId: number;
  /** Blocks waiting to be sent, by volume block number. */
  blocks: Map<number, Queued>;
  batches: number;
}

export interface WriteQueueOptions {
  maxDirtyBytes: number;
  maxBatchBytes: number;
  maxBatchesPerCopyset: number;
  send(poolId: number, copysetId: number, writes: ChunkWrite[]): Promise<void>;
}

export class BlockWriteQueue {
  /** The newest bytes of every block queued or in flight (what a read must return). */
  private readonly latest = new Map<number, Buffer>();
  private readonly inflight = new Set<number>();
  private readonly copysets = new Map<string, CopysetQueue>();
  private dirty = 0;
  private failed: Error | null = null;
  private roomWaiters: Array<() => void> = [];
  private drainWaiters: Array<() => void> = [];
  /** Batches sent and blocks in them (metrics, tests). */
  readonly counters = { batches: 0, blocks: 0 };

  constructor(private readonly opts: WriteQueueOptions) {
    if (opts.maxBatchBytes < BLOCK || opts.maxDirtyBytes < opts.maxBatchBytes) {
      throw new TierfsError(StatusCode.INVALID_ARGUMENT, `write queue: need ${BLOCK} <= maxBatchBytes (${opts.maxBatchBytes}) <= maxDirtyBytes (${opts.maxDirtyBytes})`);
    }
  }

  /** Bytes queued or in flight. */
  get dirtyBytes(): number {
    return this.dirty;
  }

  /** The first write that could not be committed: every later write and flush fails with it. */
  get failure(): Error | null {
    return this.failed;
  }

  /** Waits until `bytes` more fit under the dirty limit (at once when nothing is dirty). */
  async reserve(bytes: number): Promise<void> {
    while (this.dirty > 0 && this.dirty + bytes > this.opts.maxDirtyBytes && !this.failed) {
      await new Promise<void>((r) => this.roomWaiters.push(r));
    }
    if (this.failed) throw this.failed;
  }

  /** Queues whole blocks; resolves once all of them (or newer bytes of them) are committed. */
  put(blocks: BlockWrite[]): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    const done: Array<Promise<void>> = [];
    const kick = new Set<CopysetQueue>();
    for (const b of blocks) {
      if (b.data.length !== BLOCK) throw new TierfsError(StatusCode.INTERNAL, `write queue: block ${b.vb} has ${b.data.length} bytes`);
      const cq = this.copyset(b.poolId, b.copysetId);
      const q: Queued = { ...b, waiters: [] };
      const older = cq.blocks.get(b.vb);
      if (older) {
        q.waiters = older.waiters;
        cq.blocks.delete(b.vb);
        this.dirty -= BLOCK;
      }
      done.push(new Promise<void>((resolve, reject) => q.waiters.push({ resolve, reject })));
      cq.blocks.set(b.vb, q);
      this.latest.set(b.vb, b.data);
      this.dirty += BLOCK;
      kick.add(cq);
    }
    for (const cq of kick) this.pump(cq);
    return done.length === 1 ? done[0]! : Promise.all(done).then(() => undefined);
  }

  /**
   * The blocks in [vb, vb + count) that are queued or in flight, as [index in range, bytes].
   * Taken when a read starts: what it returns from the chunkservers is patched with these.
   */
  overlay(vb: number, count: number): Array<[number, Buffer]> {
    if (this.latest.size === 0) return [];
    const out: Array<[number, Buffer]> = [];
    for (let i = 0; i < count; i++) {
      const d = this.latest.get(vb + i);
      if (d) out.push([i, d]);
    }
    return out;
  }

  /** Resolves when nothing is queued or in flight; rejects with the failure if a write failed. */
  async drained(): Promise<void> {
    while (this.dirty > 0) await new Promise<void>((r) => this.drainWaiters.push(r));
    if (this.failed) throw this.failed;
  }

  private copyset(poolId: number, copysetId: number): CopysetQueue {
    const key = `${poolId}.${copysetId}`;
    let cq = this.copysets.get(key);
    if (!cq) {
      cq = { poolId, copysetId, blocks: new Map(), batches: 0 };
      this.copysets.set(key, cq);
    }
    return cq;
  }

  /** Sends batches of the copyset's queued blocks while it has room for more in flight. */
  private pump(cq: CopysetQueue): void {
    while (cq.batches < this.opts.maxBatchesPerCopyset && cq.blocks.size > 0) {
      const batch: Queued[] = [];
      for (const q of cq.blocks.values()) {
        if (this.inflight.has(q.vb)) continue; // its older bytes are still on the way
        batch.push(q);
        if ((batch.length + 1) * BLOCK > this.opts.maxBatchBytes) break;
      }
      if (batch.length === 0) return;
      for (const q of batch) {
        cq.blocks.delete(q.vb);
        this.inflight.add(q.vb);
      }
      cq.batches++;
      this.counters.batches++;
      this.counters.blocks += batch.length;
      this.opts.send(cq.poolId, cq.copysetId, runs(batch)).then(
        () => this.finish(cq, batch, null),
        (err: unknown) => this.finish(cq, batch, err instanceof Error ? err : new Error(String(err))),
      );
    }
  }

  private finish(cq: CopysetQueue, batch: Queued[], err: Error | null): void {
    cq.batches--;
    if (err && !this.failed) {
      this.failed = new TierfsError(StatusCode.UNAVAILABLE, `a write to copyset ${cq.poolId}.${cq.copysetId} could not be committed, so the volume's data is not what was acknowledged: ${err.message}`);
    }
    for (const q of batch) {
      this.inflight.delete(q.vb);
      this.dirty -= BLOCK;
      if (this.latest.get(q.vb) === q.data && !cq.blocks.has(q.vb)) this.latest.delete(q.vb);
      for (const w of q.waiters) {
        if (err) w.reject(this.failed!);
        else w.resolve();
      }
    }
    if (this.failed) this.dropQueued();
    const room = this.roomWaiters.splice(0);
    for (const r of room) r();
    if (this.dirty === 0) for (const r of this.drainWaiters.splice(0)) r();
    this.pump(cq);
  }

  /** After a failure nothing more is sent: queued blocks are failed too. */
  private dropQueued(): void {
    for (const cq of this.copysets.values()) {
      for (const q of cq.blocks.values()) {
        this.dirty -= BLOCK;
        if (this.latest.get(q.vb) === q.data) this.latest.delete(q.vb);
        for (const w of q.waiters) w.reject(this.failed!);
      }
      cq.blocks.clear();
    }
  }
}

/** A batch as chunk writes: blocks sorted by chunk and offset, adjacent ones joined. */
function runs(batch: Queued[]): ChunkWrite[] {
  const sorted = [...batch].sort((a, b) => a.chunkId - b.chunkId || a.chunkOffset - b.chunkOffset);
  const out: ChunkWrite[] = [];
  let i = 0;
  while (i < sorted.length) {
    const first = sorted[i]!;
    let j = i + 1;
    while (j < sorted.length && sorted[j]!.chunkId === first.chunkId && sorted[j]!.chunkOffset === sorted[j - 1]!.chunkOffset + BLOCK) j++;
    const parts = sorted.slice(i, j).map((q) => q.data);
    out.push({ chunkId: first.chunkId, offset: first.chunkOffset, data: parts.length === 1 ? parts[0]! : Buffer.concat(parts) });
    i = j;
  }
  return out;
}
