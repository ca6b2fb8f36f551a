// The public contract of the Raft runtime (what MetaServer and ChunkServer program against).
import type { Logger } from '../../common/log.js';
import type { RaftClock, RaftKv, SnapshotStaging, TransportFactory } from './env.js';

export interface LogEntryForApply {
  index: number;
  term: number;
  data: Buffer;
}

export interface StateMachine {
  /** Applies committed entries in order, returns one result per entry (passed back to the proposer). Must persist the applied index atomically with the changes. */
  apply(entries: LogEntryForApply[]): Promise<unknown[]>;
  /** Index of the last entry applied durably (read at start so replay skips applied entries). */
  appliedIndex(): Promise<number>;
  /** A consistent snapshot of the state at appliedIndex as a stream of chunks. */
  snapshot(): Promise<{ index: number; term: number; chunks: AsyncIterable<Buffer> }>;
  /** Replace all state with the snapshot. */
  restore(index: number, term: number, chunks: AsyncIterable<Buffer>): Promise<void>;
  /**
   * Makes everything applied so far durable. Called before the log is compacted past it and
   * after a restore, so a power loss cannot leave the state behind the log. Not needed when
   * apply and restore write synchronously.
   */
  flush?(): Promise<void>;
  /**
   * Registers what to do when a write the state machine made after answering fails: the
   * group stops, as when apply itself fails (a restart replays from the log).
   */
  onFailure?(cb: (err: Error) => void): void;
}

export interface RaftHostOptions {
  dataDir: string;
  /** host:port this process serves gRPC on (also this node's id in every group). */
  selfAddress: string;
  logger?: Logger;
  tickMs?: number;
  electionTicks?: number;
  heartbeatTicks?: number;
  /** Entries after which the log is compacted. */
  snapshotThreshold?: number;
  /** Serve readBarrier from a leader lease when valid (see raft/README.md). Default true. */
  leaseRead?: boolean;
  /** Core tuning (defaults: check-quorum on, 64 appends in flight, 4096 entries per append). */
  checkQuorum?: boolean;
  maxInflightMsgs?: number;
  maxEntriesPerMsg?: number;
  // The world (raft/runtime/env.ts). Defaults: real timers, gRPC, level and files under dataDir.
  // The simulator passes its virtual clock, simulated network and simulated disks.
  clock?: RaftClock;
  transport?: TransportFactory;
  storage?: { log: RaftKv; staging: SnapshotStaging };
}

export interface RaftGroupStatus {
  id: string;
  term: number;
  leader: string | null;
  commitIndex: number;
  appliedIndex: number;
  voters: string[];
  learners: string[];
  /** Number of membership changes applied. */
  epoch: number;
  /** On the leader: voters it has not heard from in the current check-quorum round (empty elsewhere). */
  unreachable?: string[];
  /** The last index of the local log (metrics: a follower's lag is this, on the leader, minus its match). */
  lastIndex?: number;
  /** On the leader: each other member's match index, the last entry known to be in its log (empty elsewhere). */
  matchIndex?: Record<string, number>;
}

export interface RaftGroup {
  readonly id: string;
  /** Replicates data; resolves with the state machine's apply result for it. Rejects NOT_LEADER when not leader or if leadership is lost before commit. */
  propose(data: Buffer): Promise<unknown>;
  /** Linearizable read barrier: resolves when the local state machine has applied everything committed at call time. */
  readBarrier(): Promise<void>;
  isLeader(): boolean;
  leaderAddress(): string | null;
  status(): RaftGroupStatus;
  /** Adds as learner, promotes when caught up; resolves when it is a voter. */
  addPeer(address: string): Promise<void>;
  removePeer(address: string): Promise<void>;
  transferLeader(address: string): Promise<void>;
  onLeaderChange(cb: (leader: string | null) => void): void;
  /** Called once when a membership change removed this node from the group. */
  onRemoved(cb: () => void): void;
}
