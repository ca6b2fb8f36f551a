// A client of ChunkService (proto/chunk.proto) that finds a copyset's leader: it starts from
// the cached view (peers, leader, epoch), follows NOT_LEADER hints, takes the view a
// chunkserver sends with STALE_EPOCH, moves to the next peer when one is dead or does not
// hold the copyset, and asks the locator (the MDS) again after a full round of failures.
// Used by the block client and by the MDS (the recycle bin's chunk deletes).
import * as grpc from '@grpc/grpc-js';
import { CHANNEL_OPTIONS, ClientsByAddress, loadProto, sleep, unary } from '../common/grpc.js';
import { clientCredentials } from '../common/cluster-auth.js';
import { StatusCode, TierfsError } from '../common/status.js';
import type { ProtoGrpcType } from '../proto/gen/chunk.js';
import type { ChunkServiceClient } from '../proto/gen/tierfs/chunk/ChunkService.js';
import type { ChunkResponse__Output } from '../proto/gen/tierfs/chunk/ChunkResponse.js';
import type { ChunkWrite } from './chunk-state.js';

export type { ChunkWrite };

export interface CopysetView {
  peers: string[];
  leader: string;
  epoch: number;
}

export interface ChunkRef {
  poolId: number;
  copysetId: number;
  chunkId: number;
}

/** Where a copyset is, as the MDS knows it. */
export type CopysetLocator = (poolId: number, copysetId: number) => Promise<CopysetView>;

export interface ChunkClientOptions {
  /** How long one operation keeps looking for a leader (elections, a dead chunkserver). */
  deadlineMs?: number;
  rpcTimeoutMs?: number;
}

type Method = 'WriteChunk' | 'WriteChunks' | 'ReadChunk' | 'DeleteChunk' | 'GetChunkInfo';

/**
 * HTTP/2 lets a server send only as much as the client's window before it waits for a
 * WINDOW_UPDATE: with the default 64 KiB, a 1 MiB read reply takes 16 such round trips, each
 * needing both processes scheduled (on a loaded host, milliseconds each). A window that holds
 * several whole replies takes them in one go.
 */
const CHUNK_CHANNEL_OPTIONS: grpc.ClientOptions = { ...CHANNEL_OPTIONS, 'grpc-node.flow_control_window': 16 * 1024 * 1024 };

/** Errors after which another peer (or a fresh view) may succeed. */
const MOVE_ON = new Set<string>([StatusCode.NOT_LEADER, StatusCode.STALE_EPOCH, StatusCode.NOT_FOUND, StatusCode.UNAVAILABLE, StatusCode.TIMEOUT, StatusCode.BUSY]);

export class ChunkClient {
  private readonly clients = new ClientsByAddress<ChunkServiceClient>((address) => {
    const Ctor = loadProto<ProtoGrpcType>('chunk.proto').tierfs.chunk.ChunkService;
    return new Ctor(address, clientCredentials(), CHUNK_CHANNEL_OPTIONS);
  });
  private readonly views = new Map<string, CopysetView>();
  private readonly deadlineMs: number;
  private readonly rpcTimeoutMs: number;
  /** Redirects and retries so far (for metrics and tests). */
  readonly counters = { redirects: 0, retries: 0, relocations: 0 };

  constructor(
    private readonly locate: CopysetLocator,
    opts: ChunkClientOptions = {},
  ) {
    this.deadlineMs = opts.deadlineMs ?? 60_000;
    this.rpcTimeoutMs = opts.rpcTimeoutMs ?? 5_000;
  }

  private client(address: string): ChunkServiceClient {
    return this.clients.get(address);
  }

  write(ref: ChunkRef, offset: number, data: Buffer): Promise<void> {
    return this.call('WriteChunk', ref, { offset, data }).then(() => undefined);
  }

  /** Writes pieces of several chunks of one copyset as one log entry, applied in order. */
  writeBatch(poolId: number, copysetId: number, writes: ChunkWrite[]): Promise<void> {
    const req = writes.map((w) => ({ chunk_id: w.chunkId, offset: w.offset, data: w.data }));
    return this.call('WriteChunks', { poolId, copysetId, chunkId: 0 }, { writes: req }).then(() => undefined);
  }

  async read(ref: ChunkRef, offset: number, length: number): Promise<Buffer> {
    return (await this.call('ReadChunk', ref, { offset, length })).data;
  }

  delete(ref: ChunkRef): Promise<void> {
    return this.call('DeleteChunk', ref, {}).then(() => undefined);
  }

  async info(ref: ChunkRef): Promise<{ exists: boolean; chunkSize: number }> {
    const res = await this.call('GetChunkInfo', ref, {});
    return { exists: res.exists, chunkSize: res.chunk_size };
  }

  /** The cached view of a copyset (tests, status). */
  view(poolId: number, copysetId: number): CopysetView | undefined {
    return this.views.get(`${poolId}.${copysetId}`);
  }

  private async call(method: Method, ref: ChunkRef, extra: { offset?: number; length?: number; data?: Buffer; writes?: Array<{ chunk_id: number; offset: number; data: Buffer }> }): Promise<ChunkResponse__Output> {
    const key = `${ref.poolId}.${ref.copysetId}`;
    const until = Date.now() + this.deadlineMs;
    let view = this.views.get(key);
    let target = '';
    let failures = 0;
    let last = '';
    for (let attempt = 0; Date.now() < until; attempt++) {
      if (!view || failures >= Math.max(view.peers.length, 1)) {
        view = await this.locate(ref.poolId, ref.copysetId);
        this.views.set(key, view);
        if (failures > 0) this.counters.relocations++;
        failures = 0;
        target = '';
      }
      if (!target) target = view.leader || view.peers[attempt % Math.max(view.peers.length, 1)] || '';
      if (!target) throw new TierfsError(StatusCode.UNAVAILABLE, `copyset ${key} has no known peers`);
      let res: ChunkResponse__Output | null = null;
      try {
        res = await unary<object, ChunkResponse__Output>(this.client(target), method, {
          pool_id: ref.poolId, copyset_id: ref.copysetId, chunk_id: ref.chunkId, epoch: view.epoch,
          offset: extra.offset ?? 0, length: extra.length ?? 0, data: extra.data ?? Buffer.alloc(0), writes: extra.writes ?? [],
        }, Math.min(this.rpcTimeoutMs, Math.max(100, until - Date.now())));
      } catch (err) {
        if (!(err instanceof TierfsError) || !MOVE_ON.has(err.code)) throw err;
        last = `${target}: ${err.message}`;
      }
      const code = res?.status?.code ?? StatusCode.UNAVAILABLE;
      if (res && code === StatusCode.OK) {
        if (res.epoch > view.epoch && res.peers.length > 0) this.views.set(key, { peers: res.peers, leader: target, epoch: res.epoch });
        else if (view.leader !== target) this.views.set(key, { ...view, leader: target });
        return res;
      }
      if (res && !MOVE_ON.has(code)) throw new TierfsError(code as StatusCode, `${method} ${key}/${ref.chunkId} on ${target}: ${res.status?.message ?? code}`);
      if (res) last = `${target}: ${code} ${res.status?.message ?? ''}`;
      // Take what the server knows when it knows more (a newer configuration, a leader).
      if (res && res.epoch >= view.epoch && res.peers.length > 0) view = { peers: res.peers, leader: res.leader, epoch: res.epoch };
      if (res && code === StatusCode.STALE_EPOCH) {
        // The leader answered with its newer configuration: again, with its epoch.
        this.counters.redirects++;
        this.views.set(key, { ...view, leader: target });
        continue;
      }
      const hint = res?.status?.leader_hint || res?.leader || '';
      if (res && code === StatusCode.NOT_LEADER && hint && hint !== target) {
        this.counters.redirects++;
        view = { ...view, leader: hint };
        this.views.set(key, view);
        target = hint;
        continue;
      }
      // Dead, electing, or not holding the copyset: the next peer, then a fresh view.
      this.counters.retries++;
      failures++;
      const next = view.peers[(view.peers.indexOf(target) + 1) % Math.max(view.peers.length, 1)] ?? '';
      view = { ...view, leader: '' };
      this.views.set(key, view);
      target = next;
      await sleep(Math.min(20 * 2 ** Math.min(attempt, 5), 500));
    }
    throw new TierfsError(StatusCode.UNAVAILABLE, `${method} ${key}/${ref.chunkId}: no leader answered within ${this.deadlineMs} ms (last: ${last})`);
  }

  close(): void {
    this.clients.closeAll();
  }
}
