// Sends the calls bound for one metaserver that were made in the same event-loop turn as
// one Batch RPC (proto/metaserver.proto): many concurrent operations then cost one round
// trip and, on the server, one Raft append. A lone call goes out as itself, so a single
// thread pays nothing but a turn of the loop. Each call keeps its own request id, status
// and retry (MetaRpc retries the calls of a failed batch one by one, with their ids).
import type * as grpc from '@grpc/grpc-js';
import { unary } from '../common/grpc.js';
import { StatusCode, TierfsError } from '../common/status.js';
import type { BatchResponse__Output } from '../proto/gen/tierfs/metaserver/BatchResponse.js';

/** Matches the server's MAX_BATCH_ITEMS: a bigger turn goes out as several batches. */
export const MAX_BATCH_ITEMS = 512;

interface Pending {
  method: string;
  req: unknown;
  timeoutMs: number;
  resolve: (res: unknown) => void;
  reject: (err: unknown) => void;
}

export class RpcBatcher {
  /** Batches sent and calls they carried, for tests and the bench. */
  batches = 0;
  batchedCalls = 0;
  private readonly queues = new Map<string, Pending[]>();
  /** Servers that answered Batch with UNIMPLEMENTED: calls go to them one by one. */
  private readonly noBatch = new Set<string>();

  constructor(
    private readonly client: (address: string) => grpc.Client,
    private readonly service: grpc.ServiceDefinition,
  ) {}

  call<Res>(address: string, method: string, req: unknown, timeoutMs: number): Promise<Res> {
    if (this.noBatch.has(address)) return unary<unknown, Res>(this.client(address), method, req, timeoutMs);
    return new Promise<Res>((resolve, reject) => {
      let q = this.queues.get(address);
      if (!q) {
        q = [];
        this.queues.set(address, q);
        // After every call of this turn (and the callbacks of answers that arrived in it) queued.
        setImmediate(() => this.flush(address));
      }
      q.push({ method, req, timeoutMs, resolve: resolve as (r: unknown) => void, reject });
    });
  }

  private flush(address: string): void {
    const q = this.queues.get(address) ?? [];
    this.queues.delete(address);
    for (let i = 0; i < q.length; i += MAX_BATCH_ITEMS) {
      const part = q.slice(i, i + MAX_BATCH_ITEMS);
      if (part.length === 1) {
        this.sendOne(address, part[0]!);
      } else {
        void this.sendBatch(address, part);
      }
    }
  }

  private sendOne(address: string, p: Pending): void {
    try {
      unary(this.client(address), p.method, p.req, p.timeoutMs).then(p.resolve, p.reject);
    } catch (err) {
      p.reject(err);
    }
  }

  private async sendBatch(address: string, all: Pending[]): Promise<void> {
    // A request that does not serialize fails alone, not its batch.
    const part: Pending[] = [];
    const items: Array<{ method: string; request: Buffer }> = [];
    for (const p of all) {
      try {
        items.push({ method: p.method, request: this.def(p.method).requestSerialize(p.req) });
        part.push(p);
      } catch (err) {
        p.reject(err);
      }
    }
    if (part.length === 0) return;
    let res: BatchResponse__Output;
    try {
      this.batches++;
      this.batchedCalls += part.length;
      res = await unary<object, BatchResponse__Output>(this.client(address), 'Batch', { items }, Math.max(...part.map((p) => p.timeoutMs)));
    } catch (err) {
      if (err instanceof TierfsError && err.code === StatusCode.NOT_SUPPORTED) {
        // A server without Batch: send these (and later calls) one by one.
        this.noBatch.add(address);
        for (const p of part) this.sendOne(address, p);
        return;
      }
      for (const p of part) p.reject(err);
      return;
    }
    part.forEach((p, i) => {
      const buf = res.responses[i];
      if (!buf) p.reject(new TierfsError(StatusCode.INTERNAL, `Batch: no answer for call ${i} (${p.method})`));
      else p.resolve(this.def(p.method).responseDeserialize(Buffer.from(buf)));
    });
  }

  private def(method: string): grpc.MethodDefinition<unknown, unknown> {
    const d = this.service[method];
    if (!d) throw new TierfsError(StatusCode.INTERNAL, `no rpc method ${method}`);
    return d as grpc.MethodDefinition<unknown, unknown>;
  }
}
