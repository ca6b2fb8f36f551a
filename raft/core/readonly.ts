// Linearizable reads: ReadIndex requests waiting for a quorum of heartbeat acks.
import type { NodeId } from './types.js';

interface PendingRead {
  index: number;
  context: Buffer;
  key: string;
  acks: Set<NodeId>;
}

/** Reads confirmed in request order: when one gets a quorum, every earlier one is confirmed too. */
export class ReadOnlyQueue {
  private queue: PendingRead[] = [];
  private readonly byKey = new Map<string, PendingRead>();

  add(index: number, context: Buffer, self: NodeId): void {
    const key = context.toString('base64');
    if (this.byKey.has(key)) return;
    const r = { index, context, key, acks: new Set([self]) };
    this.queue.push(r);
    this.byKey.set(key, r);
  }

  /** Records an ack of the read with `context`; returns how many acks it has, or 0 if unknown. */
  ack(from: NodeId, context: Buffer): number {
    const r = this.byKey.get(context.toString('base64'));
    if (!r) return 0;
    r.acks.add(from);
    return r.acks.size;
  }

  acksOf(context: Buffer): Set<NodeId> | undefined {
    return this.byKey.get(context.toString('base64'))?.acks;
  }

  /** Removes and returns every read up to and including the one with `context`. */
  releaseThrough(context: Buffer): Array<{ index: number; context: Buffer }> {
    const key = context.toString('base64');
    const i = this.queue.findIndex((r) => r.key === key);
    if (i < 0) return [];
    const out = this.queue.splice(0, i + 1);
    for (const r of out) this.byKey.delete(r.key);
    return out.map((r) => ({ index: r.index, context: r.context }));
  }

  lastContext(): Buffer | undefined {
    return this.queue[this.queue.length - 1]?.context;
  }

  reset(): void {
    this.queue = [];
    this.byKey.clear();
  }

  get size(): number {
    return this.queue.length;
  }
}
