// The simulated network: per-message delay (so reordering), loss, duplication and partitions.

import type { Prng } from './prng.js';

export interface NetworkFaults {
  lossRate: number;
  dupRate: number;
  minDelay: number;
  maxDelay: number;
}

/** A min-heap of timed events; ties break by insertion order so runs are deterministic. */
export class EventQueue<T> {
  private heap: Array<{ t: number; seq: number; v: T }> = [];
  private seq = 0;
  push(t: number, v: T): void {
    const h = this.heap;
    h.push({ t, seq: this.seq++, v });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.less(h[p]!, h[i]!)) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }
  pop(): { t: number; v: T } | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i]!, h[m]!];
        i = m;
      }
    }
    return { t: top.t, v: top.v };
  }
  get size(): number {
    return this.heap.length;
  }
  private less(a: { t: number; seq: number }, b: { t: number; seq: number }): boolean {
    return a.t < b.t || (a.t === b.t && a.seq < b.seq);
  }
}

export class SimNetwork {
  /** Links cut in both directions, as "a|b" with a < b. */
  private readonly cut = new Set<string>();
  delivered = 0;
  dropped = 0;

  constructor(
    private readonly rng: Prng,
    public faults: NetworkFaults,
  ) {}

  private key(a: string, b: string): string {
    return a < b ? `${a}|${b}` : `${b}|${a}`;
  }

  /** Splits nodes into two sides that cannot talk to each other. */
  partition(sideA: string[], sideB: string[]): void {
    for (const a of sideA) for (const b of sideB) this.cut.add(this.key(a, b));
  }

  heal(): void {
    this.cut.clear();
  }

  connected(a: string, b: string): boolean {
    return !this.cut.has(this.key(a, b));
  }

  /** Returns the delivery times for a message (none if lost, two if duplicated). */
  schedule(m: { from: string; to: string }, now: number): number[] {
    if (!this.connected(m.from, m.to) || this.rng.chance(this.faults.lossRate)) {
      this.dropped++;
      return [];
    }
    const span = this.faults.maxDelay - this.faults.minDelay + 1;
    const times = [now + this.faults.minDelay + this.rng.int(span)];
    if (this.rng.chance(this.faults.dupRate)) times.push(now + this.faults.minDelay + this.rng.int(span * 2));
    return times;
  }
}
