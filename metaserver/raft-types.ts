// The part of the raft/ library's API the metaserver uses. The types come from raft/; the
// host is stated as an interface so tests can drive copysets with a single-node in-process
// group (raft/'s RaftHost satisfies it structurally).
import type * as grpc from '@grpc/grpc-js';
import type { LogEntryForApply, RaftGroup, RaftGroupStatus, StateMachine } from '../raft/runtime/api.js';

export type { LogEntryForApply, StateMachine };
export type GroupStatus = RaftGroupStatus;
/** A raft group as the metaserver uses it (removal is learned from the host's onGroupRemoved). */
export type ReplicatedGroup = Omit<RaftGroup, 'onRemoved'>;

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
