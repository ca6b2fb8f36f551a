// gRPC transport shared by every group of a process: one long-lived stream per peer carrying
// batches of messages of all groups, a bounded queue per peer with drops when it is full (Raft
// retransmits), and reconnection with backoff. Snapshots stream as chunks on a separate RPC.
//
// Why a stream and not one unary call per batch: a unary call costs a new HTTP/2 stream
// (headers, trailers, a reply) on both sides, about a millisecond of CPU per hop on this
// machine kind, and the reply-per-batch limited how many batches could be in flight. On a
// stream a batch is one DATA frame, written as soon as the current turn's messages are
// collected; TCP and HTTP/2 flow control give the back-pressure.
import * as grpc from '@grpc/grpc-js';
import { CHANNEL_OPTIONS, clientCredentials, loadProto } from '../../common/grpc.js';
import { type Logger, silentLogger } from '../../common/log.js';
import type { RaftTransport, TransportHandlers } from './env.js';

interface TransportProto {
  tierfs: { raft: { RaftTransport: grpc.ServiceClientConstructor } };
}

export type { TransportHandlers };

const MAX_QUEUE = 8192;
const MAX_BATCH_BYTES = 4 * 1024 * 1024;
/** Batches remembered per peer to tell their groups when the stream breaks (delivery unknown). */
const RECENT_BATCHES = 32;

type BatchStream = grpc.ClientDuplexStream<{ from: string; messages: Buffer[] }, unknown>;

class PeerSender {
  private queue: Buffer[] = [];
  private stream: BatchStream | null = null;
  private streamOpenedAt = 0;
  /** The stream's buffer is full: wait for 'drain' before writing more. */
  private blocked = false;
  private flushScheduled = false;
  private recent: Buffer[][] = [];
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
    // Every message one turn of the host's loop produces (all groups) leaves in one batch: the
    // flush runs once the current synchronous work is done, before any I/O is polled.
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
  }

  private open(): BatchStream {
    const fn = (this.client as unknown as Record<string, (md: grpc.Metadata, o: grpc.CallOptions) => BatchStream>).Stream!;
    const stream = fn.call(this.client, new grpc.Metadata(), {});
    this.stream = stream;
    this.streamOpenedAt = Date.now();
    this.blocked = false;
    stream.on('drain', () => {
      if (this.stream !== stream) return;
      this.blocked = false;
      this.flush();
    });
    // The receiver never writes; consume anyway so the stream is never paused.
    stream.on('data', () => {});
    const broken = (err: unknown) => {
      if (this.stream !== stream) return;
      this.stream = null;
      this.blocked = false;
      this.fail(err);
    };
    stream.on('error', broken);
    stream.on('status', (st: grpc.StatusObject) => broken(new Error(`stream ended: ${st.code} ${st.details}`)));
    stream.on('end', () => broken(new Error('stream ended by the peer')));
    return stream;
  }

  /** The stream broke: batches written lately may be lost; back off, then reopen on demand. */
  private fail(err: unknown): void {
    if (this.closed) return;
    const lost = this.recent.flat();
    this.recent = [];
    if (lost.length > 0) this.handlers.onUnreachable(this.address, lost);
    // A stream that lived a while was healthy: start the backoff over.
    const lived = Date.now() - this.streamOpenedAt;
    this.backoffMs = lived > 1000 ? 50 : Math.min(Math.max(this.backoffMs * 2, 50), 1000);
    if (this.backoffTimer === null) {
      this.backoffTimer = setTimeout(() => {
        this.backoffTimer = null;
        if (this.queue.length > 0) this.flush();
      }, this.backoffMs);
      this.backoffTimer.unref();
    }
    void err;
  }

  private flush(): void {
    while (!this.closed && !this.blocked && this.backoffTimer === null && this.queue.length > 0) {
      let bytes = 0;
      let n = 0;
      while (n < this.queue.length && (n === 0 || bytes + this.queue[n]!.length < MAX_BATCH_BYTES)) bytes += this.queue[n++]!.length;
      const batch = this.queue.splice(0, n);
      const stream = this.stream ?? this.open();
      this.recent.push(batch);
      if (this.recent.length > RECENT_BATCHES) this.recent.shift();
      try {
        if (!stream.write({ from: this.self, messages: batch })) this.blocked = true;
      } catch (e) {
        this.stream = null;
        this.fail(e);
      }
    }
  }

  close(): void {
    this.closed = true;
    if (this.backoffTimer) clearTimeout(this.backoffTimer);
    this.backoffTimer = null;
    const s = this.stream;
    this.stream = null;
    if (s) {
      s.on('error', () => {});
      s.cancel();
    }
  }
}

export class GrpcTransport implements RaftTransport {
  private readonly peers = new Map<string, PeerSender>();
  /** Peers' streams to us: ended on close so a server shutdown need not wait for the peers. */
  private readonly inbound = new Set<grpc.ServerDuplexStream<{ messages: Buffer[] }, unknown>>();
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
      Stream: (call: grpc.ServerDuplexStream<{ messages: Buffer[] }, unknown>) => {
        if (this.closed) return call.end();
        this.inbound.add(call);
        const done = () => this.inbound.delete(call);
        call.on('close', done);
        call.on('cancelled', done);
        call.on('data', (b: { messages: Buffer[] }) => {
          try {
            this.handlers.onMessages(b.messages);
          } catch (e) {
            this.log.warn({ err: e instanceof Error ? e.message : String(e) }, 'raft message batch rejected');
          }
        });
        call.on('end', () => {
          done();
          call.end();
        });
        call.on('error', done);
      },
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
      const client = new this.Ctor(address, clientCredentials(), CHANNEL_OPTIONS);
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
    for (const call of this.inbound) call.end();
    this.inbound.clear();
  }
}
