// What the runtime takes from the world: time, timers, randomness, the transport and the
// disk. Production uses real timers, gRPC and level (the defaults); the simulator
// (raft/sim/) passes a virtual clock, a simulated network and simulated disks, so it drives
// the same RaftHost/GroupNode code the daemons run (TigerBeetle's idea, ../shared/STYLE.md).
import type { Logger } from '../../common/log.js';

export interface RaftClock {
  /** Milliseconds; only differences matter. */
  now(): number;
  /** Runs `fn` once after `ms`; returns a function that cancels it. */
  setTimer(ms: number, fn: () => void): () => void;
  /** Runs `fn` on a later turn of the event loop (after the current microtasks). */
  defer(fn: () => void): void;
  /** Uniform in [0, 1): election timeout jitter. */
  random(): number;
}

/** Real time: timers never keep the process alive on their own. */
export const realClock: RaftClock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref();
    return () => clearTimeout(t);
  },
  defer: (fn) => void setImmediate(fn),
  random: () => Math.random(),
};

export const sleepOn = (clock: RaftClock, ms: number): Promise<void> => new Promise((r) => clock.setTimer(ms, r));

/** Delivery of the runtime's encoded messages (codec.ts) to it by the transport. */
export interface TransportHandlers {
  onMessages(batch: Buffer[]): void;
  /** A snapshot arrived: header (encoded message) plus data chunks. */
  onSnapshot(header: Buffer, chunks: Buffer[]): Promise<void>;
  /** Messages to `peer` could not be delivered (the groups report it to their cores). */
  onUnreachable(peer: string, batch: Buffer[]): void;
}

/** Sends encoded messages to peers: best effort (Raft retransmits), snapshots confirmed. */
export interface RaftTransport {
  send(to: string, encoded: Buffer): void;
  /** Streams a snapshot; resolves true when the receiver took it. */
  sendSnapshot(to: string, header: Buffer, chunks: AsyncIterable<Buffer>): Promise<boolean>;
  close(): void;
}

export type TransportFactory = (self: string, handlers: TransportHandlers, log: Logger) => RaftTransport;

export interface KvRange {
  gt?: string;
  gte?: string;
  lt?: string;
  lte?: string;
  limit?: number;
}

export type KvOp<V> = { type: 'put'; key: string; value: V } | { type: 'del'; key: string };

/**
 * The part of an ordered key-value store (level) the Raft log store uses. `sync: true`
 * makes this write and every earlier one durable; without it a crash may lose the write.
 */
export interface RaftKv {
  get(key: string): Promise<Buffer | undefined>;
  batch(ops: Array<KvOp<Buffer>>, opts?: { sync?: boolean }): Promise<void>;
  del(key: string, opts?: { sync?: boolean }): Promise<void>;
  keys(range: KvRange): AsyncIterable<string>;
  values(range: KvRange): AsyncIterable<Buffer>;
  clear(range: KvRange): Promise<void>;
  close(): Promise<void>;
}

/** Where a received snapshot is staged (durably) before the state machine restores it. */
export interface SnapshotStaging {
  write(groupId: string, chunks: Buffer[]): Promise<void>;
  read(groupId: string): AsyncIterable<Buffer>;
  remove(groupId: string): Promise<void>;
}
