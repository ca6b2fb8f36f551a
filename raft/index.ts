// The raft library: a deterministic core (raft/core) and a runtime (raft/runtime) hosting many
// groups per process over one level store and one gRPC transport.
export type { LogEntryForApply, StateMachine, RaftHostOptions, RaftGroup, RaftGroupStatus } from './runtime/api.js';
export { RaftHost } from './runtime/host.js';
export { RawNode, type Ready } from './core/rawnode.js';
export { MemoryStorage } from './core/storage.js';
export * from './core/types.js';
