// gRPC transport shared by every group of a process: one bounded queue per peer, a few batch
// RPCs in flight per peer (back-pressure without making a reply wait a whole round trip behind
// the previous batch), drops when a queue is full (Raft retransmits), and channels that
// reconnect on their own. Snapshots stream as chunks on a separate RPC.
import * as grpc from '@grpc/grpc-js';
import { CHANNEL_OPTIONS, loadProto } from '../../common/grpc.js';
import { type Logger, silentLogger } from '../../common/log.js';
import type { RaftTransport, TransportHandlers } from './env.js';

interface TransportProto {
  tierfs: { raft: { RaftTransport: grpc.ServiceClientConstructor } };
}

export type { TransportHandlers };

const MAX_QUEUE = 8192;
const MAX_BATCH_BYTES = 4 * 1024 * 1024;
/**
 * Batch RPCs in flight per peer. With one, a vote or append reply queued behind a heartbeat
 * batch waits its full round trip; Raft tolerates the rare reordering of concurrent batches.
 */
const MAX_INFLIGHT = 4;

class PeerSender {
  private queue: Buffer[] = [];
  private inflight = 0;
  private backoffMs = 0;
  private backoffTimer: NodeJS.Timeout | null = null;
  dropped = 0;
  closed = false;

  constructor(
    readonly address: string,
    readonly client: grpc.Client,
    private readonly self: string,
    private readonly handlers: TransportHandlers,
  ) {}

  enqueue(b: Buffer): void {
    if (this.queue.length >= MAX_QUEUE) {
      this.dropped++;
      return;
    }
    this.queue.push(b);
    this.pump();
  }

  private pump(): void {
    // While backing off after a failure, one retry probes the peer; the rest wait for it.
    const limit = this.backoffMs > 0 ? 1 : MAX_INFLIGHT;
    while (!this.closed && this.backoffTimer === null && this.inflight < limit && this.queue.length > 0) this.sendBatch();
  }

  private sendBatch(): void {
    let bytes = 0;
    let n = 0;
    while (n < this.queue.length && (n === 0 || bytes + this.queue[n]!.length < MAX_BATCH_BYTES)) bytes += this.queue[n++]!.length;
    const batch = this.queue.splice(0, n);
    this.inflight++;
    const send = (this.client as unknown as Record<string, (req: unknown, md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null) => void) => void>).Send!;
    const done = (err: grpc.ServiceError | Error | null) => {
      this.inflight--;
      if (this.closed) return;
      if (err) {
        this.handlers.onUnreachable(this.address, batch);
        if (this.backoffTimer === null) {
          this.backoffMs = Math.min(Math.max(this.backoffMs * 2, 50), 1000);
          this.backoffTimer = setTimeout(() => {
            this.backoffTimer = null;
            this.pump();
          }, this.backoffMs);
          this.backoffTimer.unref();
        }
        return;
      }
      this.backoffMs = 0;
      this.pump();
    };
    try {
      send.call(this.client, { from: this.self, messages: batch }, new grpc.Metadata(), { deadline: Date.now() + 5000 }, done);
    } catch (e) {
      done(e instanceof Error ? e : new Error(String(e)));
    }
  }

  close(): void {
    this.closed = true;
    if (this.backoffTimer) clearTimeout(this.backoffTimer);
    this.backoffTimer = null;
  }
}

export class GrpcTransport implements RaftTransport {
  private readonly peers = new Map<string, PeerSender>();
  private readonly Ctor: grpc.ServiceClientConstructor;
  private closed = false;

  constructor(
    readonly self: string,
    private readonly handlers: TransportHandlers,
    private readonly log: Logger = silentLogger,
  ) {
    this.Ctor = loadProto<TransportProto>('raft.proto').tierfs.raft.RaftTransport;
  }

  service(): [grpc.ServiceDefinition, grpc.UntypedServiceImplementation] {
    const impl: grpc.UntypedServiceImplementation = {
      Send: (call: grpc.ServerUnaryCall<{ messages: Buffer[] }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        try {
          this.handlers.onMessages(call.request.messages);
          cb(null, { ok: true, error: '' });
        } catch (e) {
          cb(null, { ok: false, error: e instanceof Error ? e.message : String(e) });
        }
      },
      SendSnapshot: (call: grpc.ServerReadableStream<{ header: Buffer; data: Buffer }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        let header: Buffer | null = null;
        const chunks: Buffer[] = [];
        call.on('data', (c: { header: Buffer; data: Buffer }) => {
          if (!header && c.header.length > 0) header = c.header;
          if (c.data.length > 0) chunks.push(c.data);
        });
        call.on('end', () => {
          if (!header) return cb(null, { ok: false, error: 'snapshot without header' });
          this.handlers.onSnapshot(header, chunks).then(
            () => cb(null, { ok: true, error: '' }),
            (e: unknown) => cb(null, { ok: false, error: e instanceof Error ? e.message : String(e) }),
          );
        });
        call.on('error', () => {});
      },
    };
    return [this.Ctor.service, impl];
  }

  private peer(address: string): PeerSender {
    let p = this.peers.get(address);
    if (!p) {
      const client = new this.Ctor(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
      p = new PeerSender(address, client, this.self, this.handlers);
      this.peers.set(address, p);
    }
    return p;
  }

  send(to: string, encoded: Buffer): void {
    if (this.closed) return;
    this.peer(to).enqueue(encoded);
  }

  /** Streams a snapshot; resolves true when the receiver installed it. */
  async sendSnapshot(to: string, header: Buffer, chunks: AsyncIterable<Buffer>): Promise<boolean> {
    if (this.closed) return false;
    const client = this.peer(to).client;
    const fn = (client as unknown as Record<string, (md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: { ok: boolean; error: string }) => void) => grpc.ClientWritableStream<unknown>>).SendSnapshot!;
    return new Promise<boolean>((resolve) => {
      if (this.closed) return resolve(false);
      const stream = fn.call(client, new grpc.Metadata(), { deadline: Date.now() + 120_000 }, (err, res) => {
        if (err || !res?.ok) this.log.warn({ to, err: err?.message ?? res?.error }, 'snapshot send failed');
        resolve(!err && !!res?.ok);
      });
      void (async () => {
        try {
          stream.write({ header, data: Buffer.alloc(0) });
          for await (const c of chunks) {
            // Respect the stream's flow control: wait for drain when its buffer is full.
            for (let off = 0; off < c.length; off += 1024 * 1024) {
              if (!stream.write({ header: Buffer.alloc(0), data: c.subarray(off, off + 1024 * 1024) })) {
                await new Promise((r) => stream.once('drain', r));
              }
            }
          }
          stream.end();
        } catch (e) {
          this.log.warn({ to, err: String(e) }, 'snapshot read failed');
          stream.cancel();
        }
      })();
    });
  }

  close(): void {
    this.closed = true;
    for (const p of this.peers.values()) {
      p.close();
      p.client.close();
    }
    this.peers.clear();
  }
}
