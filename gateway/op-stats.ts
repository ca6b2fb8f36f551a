// Counts and times the calls of an interface (the FUSE filesystem, the MetaClient) through a
// Proxy, so `tierfs stats` can show operations per second and their latency without the
// layers themselves keeping counters. Only functions are wrapped; `this` stays the target,
// so calls a layer makes on itself are not counted twice.
import { performance } from 'node:perf_hooks';

export interface OpCount {
  count: number;
  errors: number;
  /** Sum of latencies, ms. */
  totalMs: number;
}

/** Sees every recorded call too (the mount's Prometheus histograms, mount-metrics.ts). */
export type OpObserver = (op: string, ms: number, failed: boolean) => void;

export class OpStats {
  private readonly ops = new Map<string, OpCount>();

  constructor(private readonly observer?: OpObserver) {}

  record(op: string, ms: number, failed: boolean): void {
    this.observer?.(op, ms, failed);
    let c = this.ops.get(op);
    if (!c) {
      c = { count: 0, errors: 0, totalMs: 0 };
      this.ops.set(op, c);
    }
    c.count++;
    c.totalMs += ms;
    if (failed) c.errors++;
  }

  snapshot(): Record<string, OpCount> {
    return Object.fromEntries([...this.ops].map(([k, v]) => [k, { ...v, totalMs: Math.round(v.totalMs * 1000) / 1000 }]));
  }
}

/** The object each proxy made by timed() wraps. */
const targets = new WeakMap<object, object>();

/**
 * The object under a proxy made by timed() (else `o` itself): what keys identity-based
 * registries (coherence.ts matches the data path's commits to the VFS by the MetaClient
 * both were built on, one of them through the counting proxy).
 */
export function untimed<T extends object>(o: T): T {
  return (targets.get(o) as T | undefined) ?? o;
}

/** `target` with every method call (sync or async) counted and timed in `stats`, except `skip`. */
export function timed<T extends object>(target: T, stats: OpStats, skip: ReadonlySet<string> = new Set()): T {
  const wrapped = new Map<PropertyKey, unknown>();
  const proxy = new Proxy(target, {
    get(t, prop, receiver) {
      const value: unknown = Reflect.get(t, prop, receiver);
      if (typeof value !== 'function' || typeof prop !== 'string' || skip.has(prop) || prop === 'constructor') return value;
      let fn = wrapped.get(prop);
      if (!fn) {
        const method = value as (...args: unknown[]) => unknown;
        fn = (...args: unknown[]) => {
          const start = performance.now();
          let out: unknown;
          try {
            out = method.apply(t, args);
          } catch (err) {
            stats.record(prop, performance.now() - start, true);
            throw err;
          }
          if (out instanceof Promise) {
            return out.then(
              (v: unknown) => (stats.record(prop, performance.now() - start, false), v),
              (err: unknown) => {
                stats.record(prop, performance.now() - start, true);
                throw err;
              },
            );
          }
          stats.record(prop, performance.now() - start, false);
          return out;
        };
        wrapped.set(prop, fn);
      }
      return fn;
    },
  });
  targets.set(proxy, untimed(target));
  return proxy;
}
