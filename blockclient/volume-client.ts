// The block client: a volume offset -> segment -> chunk -> copyset leader. Segments come from
// the MDS (allocated on first write) and are cached; copyset leaders are found and followed
// by ChunkClient (redirects on a stale epoch or a leader change, retries on a dead
// chunkserver). Requests are split at chunk boundaries and the pieces go out in parallel.
// A write resolves once its chunk's copyset committed it on a Raft majority, so there is
// nothing to flush: FLUSH/fsync only waits for writes still in flight.
import { hostname } from 'node:os';
import type { MdsClient, ChunkLocation, VolumeInfo } from '../mds/client.js';
import { StatusCode, TierfsError } from '../common/status.js';
import { ChunkClient, type ChunkClientOptions, type ChunkRef } from '../chunkserver/chunk-client.js';

const BLOCK = 4096;

interface Piece {
  /** Offset in the volume. */
  offset: number;
  length: number;
  segment: number;
  chunkIndex: number;
  chunkOffset: number;
}

export interface OpenOptions extends ChunkClientOptions {
  readOnly?: boolean;
}

export class VolumeClient {
  private readonly segments = new Map<number, Promise<ChunkLocation[] | null>>();
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Per chunk: aligned writes in flight, and the chain of read-modify-writes (which exclude them). */
  private readonly chunkWrites = new Map<number, { inflight: Set<Promise<void>>; rmw: Promise<void> | null }>();
  private refreshTimer: NodeJS.Timeout | null = null;
  readonly chunks: ChunkClient;

  private constructor(
    private readonly mds: MdsClient,
    private info: VolumeInfo,
    private readonly sessionId: string,
    readonly readOnly: boolean,
    opts: ChunkClientOptions,
  ) {
    this.chunks = new ChunkClient((poolId, copysetId) => mds.getCopysetLocation(poolId, copysetId), opts);
  }

  /** Opens the volume (refused while another host has it read-write) and keeps the session alive. */
  static async open(mds: MdsClient, name: string, opts: OpenOptions = {}): Promise<VolumeClient> {
    const { volume, sessionId, ttlMs } = await mds.openVolume(name, hostname(), process.pid, opts.readOnly ?? false);
    const vc = new VolumeClient(mds, volume, sessionId, opts.readOnly ?? false, opts);
    vc.refreshTimer = setInterval(() => {
      mds.refreshVolumeSession(name, sessionId).catch(() => undefined);
    }, Math.max(500, Math.floor(ttlMs / 3)));
    vc.refreshTimer.unref();
    return vc;
  }

  get name(): string {
    return this.info.name;
  }

  get size(): number {
    return Number(this.info.size);
  }

  /** Splits [offset, offset + length) at chunk boundaries. */
  private pieces(offset: number, length: number): Piece[] {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new TierfsError(StatusCode.INVALID_ARGUMENT, `range ${offset}+${length} is outside volume "${this.name}" (${this.size} bytes)`);
    }
    const chunkSize = Number(this.info.chunk_size);
    const perSegment = Number(this.info.segment_size) / chunkSize;
    const out: Piece[] = [];
    for (let off = offset; off < offset + length;) {
      const chunk = Math.floor(off / chunkSize);
      const chunkOffset = off - chunk * chunkSize;
      const len = Math.min(chunkSize - chunkOffset, offset + length - off);
      out.push({ offset: off, length: len, segment: Math.floor(chunk / perSegment), chunkIndex: chunk % perSegment, chunkOffset });
      off += len;
    }
    return out;
  }

  private segment(index: number, allocate: boolean): Promise<ChunkLocation[] | null> {
    const cached = this.segments.get(index);
    if (cached) {
      return cached.then((s) => {
        if (s || !allocate) return s;
        this.segments.delete(index);
        return this.segment(index, true);
      });
    }
    const p = this.mds.getSegment(Number(this.info.id), index, allocate);
    this.segments.set(index, p);
    p.catch(() => this.segments.delete(index));
    return p;
  }

  private async chunkRef(piece: Piece, allocate: boolean): Promise<ChunkRef | null> {
    const seg = await this.segment(piece.segment, allocate);
    if (!seg) return null;
    const c = seg[piece.chunkIndex];
    if (!c) throw new TierfsError(StatusCode.INTERNAL, `segment ${piece.segment} of "${this.name}" has no chunk ${piece.chunkIndex}`);
    return { poolId: c.pool_id, copysetId: c.copyset_id, chunkId: Number(c.chunk_id) };
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p)).catch(() => undefined);
    return p;
  }

  /** Reads into `target` from `offset`; never-written ranges read as zeros. */
  async read(offset: number, target: Buffer): Promise<void> {
    await Promise.all(this.pieces(offset, target.length).map(async (p) => {
      const ref = await this.chunkRef(p, false);
      const dst = target.subarray(p.offset - offset, p.offset - offset + p.length);
      if (!ref) {
        dst.fill(0);
        return;
      }
      const a0 = p.chunkOffset - (p.chunkOffset % BLOCK);
      const a1 = Math.ceil((p.chunkOffset + p.length) / BLOCK) * BLOCK;
      const data = await this.chunks.read(ref, a0, a1 - a0);
      data.copy(dst, 0, p.chunkOffset - a0, p.chunkOffset - a0 + p.length);
    }));
  }

  /** Writes `data` at `offset`; resolves once every piece is on a Raft majority. */
  write(offset: number, data: Buffer): Promise<void> {
    if (this.readOnly) return Promise.reject(new TierfsError(StatusCode.READ_ONLY, `volume "${this.name}" is attached read-only`));
    return this.track(Promise.all(this.pieces(offset, data.length).map(async (p) => {
      const ref = (await this.chunkRef(p, true))!;
      return this.writePiece(ref, p.chunkOffset, data.subarray(p.offset - offset, p.offset - offset + p.length));
    })).then(() => undefined));
  }

  /**
   * One piece inside a chunk. Chunkservers take whole 4 KiB blocks; anything else is a
   * read-modify-write of the covering blocks, which runs alone in its chunk (after the aligned
   * writes in flight, before the next ones), so two of them never overwrite each other's bytes.
   */
  private async writePiece(ref: ChunkRef, chunkOffset: number, src: Buffer): Promise<void> {
    let st = this.chunkWrites.get(ref.chunkId);
    if (!st) {
      st = { inflight: new Set(), rmw: null };
      this.chunkWrites.set(ref.chunkId, st);
    }
    const state = st;
    const forget = () => {
      if (state.inflight.size === 0 && state.rmw === null) this.chunkWrites.delete(ref.chunkId);
    };
    if (chunkOffset % BLOCK === 0 && src.length % BLOCK === 0) {
      while (state.rmw) await state.rmw;
      const w = this.chunks.write(ref, chunkOffset, src);
      state.inflight.add(w);
      try {
        await w;
      } finally {
        state.inflight.delete(w);
        forget();
      }
      return;
    }
    const run = (state.rmw ?? Promise.resolve()).then(async () => {
      await Promise.allSettled([...state.inflight]);
      const a0 = chunkOffset - (chunkOffset % BLOCK);
      const a1 = Math.ceil((chunkOffset + src.length) / BLOCK) * BLOCK;
      const buf = await this.chunks.read(ref, a0, a1 - a0);
      src.copy(buf, chunkOffset - a0);
      await this.chunks.write(ref, a0, buf);
    });
    const settled = run.catch(() => undefined);
    state.rmw = settled;
    void settled.then(() => {
      if (state.rmw === settled) state.rmw = null;
      forget();
    });
    return run;
  }

  /** Zeroes a range: whole chunks are deleted (their files go back to the pool), edges written with zeros. */
  trim(offset: number, length: number): Promise<void> {
    const chunkSize = Number(this.info.chunk_size);
    return this.track(Promise.all(this.pieces(offset, length).map(async (p) => {
      const ref = await this.chunkRef(p, false);
      if (!ref) return;
      if (p.length === chunkSize) return this.chunks.delete(ref);
      return this.write(p.offset, Buffer.alloc(p.length));
    })).then(() => undefined));
  }

  /** Waits for the writes in flight: acknowledged writes are already on a Raft majority. */
  async flush(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  async close(): Promise<void> {
    await this.flush();
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    this.chunks.close();
    await this.mds.closeVolume(this.name, this.sessionId).catch(() => undefined);
  }
}
