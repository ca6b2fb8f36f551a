// The part of the raft/ library's API the metaserver uses, stated here so the metaserver can
// be built and tested against any implementation of it (raft/'s RaftHost satisfies it
// structurally; tests use a single-node in-process group).
import type * as grpc from '@grpc/grpc-js';

export interface LogEntryForApply {
  index: number;
  term: number;
  data: Buffer;
}

export interface StateMachine {
  apply(entries: LogEntryForApply[]): Promise<unknown[]>;
  appliedIndex(): Promise<number>;
  snapshot(): Promise<{ index: number; term: number; chunks: AsyncIterable<Buffer> }>;
  restore(index: number, term: number, chunks: AsyncIterable<Buffer>): Promise<void>;
}

export interface GroupStatus {
  id: string;
  term: number;
  leader: string | null;
  commitIndex: number;
  appliedIndex: number;
  voters: string[];
  learners: string[];
  epoch: number;
}

export interface ReplicatedGroup {
  readonly id: string;
  /** Resolves with the state machine's apply result; rejects NOT_LEADER (leaderHint) off the leader. */
  propose(data: Buffer): Promise<unknown>;
  readBarrier(): Promise<void>;
  isLeader(): boolean;
  leaderAddress(): string | null;
  status(): GroupStatus;
  addPeer(address: string): Promise<void>;
  removePeer(address: string): Promise<void>;
  transferLeader(address: string): Promise<void>;
  onLeaderChange(cb: (leader: string | null) => void): void;
}

export interface ReplicationHost {
  grpcService(): [grpc.ServiceDefinition, grpc.UntypedServiceImplementation];
  createGroup(groupId: string, opts: { peers: string[]; stateMachine: StateMachine; join?: boolean }): Promise<ReplicatedGroup>;
  openGroup(groupId: string, sm: StateMachine): Promise<ReplicatedGroup>;
  listGroups(): Promise<string[]>;
  removeGroup(groupId: string): Promise<void>;
  close(): Promise<void>;
  /** Called with the group id when a membership change removed this server from a group. */
  onGroupRemoved?(cb: (groupId: string) => void): void;
}
