// The simulated network seen through the runtime's RaftTransport: each encoded message
// becomes zero, one or two delivery events (loss, duplication, delay and so reordering,
// partitions). Undeliverable messages are sometimes reported back as unreachable, like a
// failed gRPC call. Snapshots arrive whole and their outcome returns to the sender.
import type { RaftTransport, TransportHandlers } from '../runtime/env.js';
import type { SimNetwork } from './network.js';
import type { SimWorld } from './world.js';

export interface SimEndpoints {
  /** The handlers of `id`'s running incarnation, or null when it is down. */
  handlersOf(id: string): TransportHandlers | null;
}

export class SimTransport implements RaftTransport {
  constructor(
    private readonly world: SimWorld,
    private readonly net: SimNetwork,
    private readonly endpoints: SimEndpoints,
    private readonly self: string,
    private readonly handlers: TransportHandlers,
    private readonly alive: () => boolean,
    private readonly onSend: () => void,
  ) {}

  send(to: string, encoded: Buffer): void {
    if (!this.alive()) return;
    this.onSend();
    const times = this.net.schedule({ from: this.self, to }, this.world.now);
    for (const t of times) {
      this.world.at(t, () => this.endpoints.handlersOf(to)?.onMessages([encoded]));
    }
    if (times.length === 0 || this.endpoints.handlersOf(to) === null) {
      // A failed RPC is noticed by the sender after a while (not always: a lost packet is silent).
      if (this.world.rng.chance(0.3)) this.world.after(5 + this.world.rng.int(30), () => this.alive() && this.handlers.onUnreachable(to, [encoded]));
    }
  }

  async sendSnapshot(to: string, header: Buffer, chunks: AsyncIterable<Buffer>): Promise<boolean> {
    const data: Buffer[] = [];
    for await (const c of chunks) data.push(Buffer.from(c));
    if (!this.alive()) return new Promise<boolean>(() => {});
    const [t] = this.net.schedule({ from: this.self, to }, this.world.now);
    return new Promise<boolean>((resolve) => {
      const answer = (ok: boolean) => this.world.after(1 + this.world.rng.int(10), () => this.alive() && resolve(ok));
      if (t === undefined) {
        this.world.after(20 + this.world.rng.int(50), () => this.alive() && resolve(false));
        return;
      }
      this.world.at(t, () => {
        const h = this.endpoints.handlersOf(to);
        if (!h) return answer(false);
        h.onSnapshot(header, data).then(
          () => answer(true),
          () => answer(false),
        );
      });
    });
  }

  close(): void {}
}
