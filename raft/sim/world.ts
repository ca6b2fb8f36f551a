// Virtual time for the simulator: one queue of timed events and an async loop that runs them
// in order. Between events the loop lets every microtask finish (the production code is
// async: level-like reads and writes, apply batches), so an event and everything it set in
// motion complete before simulated time moves on. Nothing here reads the real clock.
import type { RaftClock } from '../runtime/env.js';
import { EventQueue } from './network.js';
import type { Prng } from './prng.js';

/** Lets all pending microtasks (and the ones they queue) run. */
const settleMicrotasks = (): Promise<void> => new Promise((r) => setImmediate(r));

export class SimWorld {
  now = 0;
  events = 0;
  private readonly q = new EventQueue<() => void>();

  constructor(readonly rng: Prng) {}

  at(t: number, fn: () => void): void {
    this.q.push(Math.max(t, this.now), fn);
  }

  after(ms: number, fn: () => void): void {
    this.at(this.now + ms, fn);
  }

  /** Runs events until `done()` or `until` (simulated ms); returns whether `done()` held. */
  async run(until: number, done: () => boolean, afterEvent?: () => void): Promise<boolean> {
    while (!done()) {
      const ev = this.q.pop();
      if (!ev || ev.t > until) {
        if (ev) this.q.push(ev.t, ev.v);
        this.now = Math.max(this.now, until);
        return done();
      }
      this.now = ev.t;
      this.events++;
      ev.v();
      await settleMicrotasks();
      afterEvent?.();
    }
    return true;
  }

  /** A clock for one incarnation of a server: its timers die with it. */
  clock(alive: () => boolean): RaftClock {
    return {
      now: () => this.now,
      setTimer: (ms, fn) => {
        let cancelled = false;
        this.after(ms, () => {
          if (!cancelled && alive()) fn();
        });
        return () => {
          cancelled = true;
        };
      },
      defer: (fn) => this.after(0, () => alive() && fn()),
      random: () => this.rng.next(),
    };
  }
}
