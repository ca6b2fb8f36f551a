// The values the consensus core consumes and produces. Node ids are the peers' "host:port".

export type NodeId = string;
/** No node / no vote. */
export const NONE: NodeId = '';

export const MsgType = {
  Hup: 0, // local: start an election
  Beat: 1, // local: leader sends heartbeats
  Prop: 2, // local: propose entries
  App: 3,
  AppResp: 4,
  Vote: 5,
  VoteResp: 6,
  PreVote: 7,
  PreVoteResp: 8,
  Snap: 9,
  Heartbeat: 10,
  HeartbeatResp: 11,
  TransferLeader: 12,
  TimeoutNow: 13,
  ReadIndex: 14,
  Unreachable: 15, // local: transport could not reach a peer
  SnapStatus: 16, // local: snapshot send finished (reject = failed)
  CheckQuorum: 17, // local: leader checks it still hears from a quorum
} as const;
export type MsgType = (typeof MsgType)[keyof typeof MsgType];

export const EntryType = { Normal: 0, ConfChange: 1 } as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Buffer;
}

export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
  /** Number of membership changes applied so far (the configuration's epoch). */
  epoch?: number;
}

export interface SnapshotMeta {
  index: number;
  term: number;
  conf: ConfState;
}

/** A snapshot as the core sees it: metadata, plus state-machine data the core passes through untouched. */
export interface Snapshot {
  meta: SnapshotMeta;
  data?: unknown;
}

export interface Message {
  type: MsgType;
  to: NodeId;
  from: NodeId;
  term: number;
  /** App: term of the entry before `entries`; Vote: last log term. */
  logTerm: number;
  /** App: index before `entries`; AppResp: last matched index (or rejected index); Vote: last log index. */
  index: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  /** AppResp reject: the follower's last index, a hint where to probe next. */
  rejectHint: number;
  snapshot?: Snapshot;
  /** Opaque request context: ReadIndex ids, forced-campaign marker. */
  context?: Buffer;
}

export function emptyMessage(type: MsgType, to: NodeId = NONE, from: NodeId = NONE): Message {
  return { type, to, from, term: 0, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 };
}

export const ConfChangeType = { AddLearner: 0, Promote: 1, Remove: 2 } as const;
export type ConfChangeType = (typeof ConfChangeType)[keyof typeof ConfChangeType];

export interface ConfChange {
  type: ConfChangeType;
  node: NodeId;
}

export interface ReadState {
  index: number;
  context: Buffer;
}

export const StateRole = { Follower: 'follower', PreCandidate: 'pre-candidate', Candidate: 'candidate', Leader: 'leader' } as const;
export type StateRole = (typeof StateRole)[keyof typeof StateRole];

export function isLocalMsg(t: MsgType): boolean {
  return (
    t === MsgType.Hup || t === MsgType.Beat || t === MsgType.Unreachable || t === MsgType.SnapStatus || t === MsgType.CheckQuorum
  );
}

export function isResponseMsg(t: MsgType): boolean {
  return t === MsgType.AppResp || t === MsgType.VoteResp || t === MsgType.HeartbeatResp || t === MsgType.Unreachable || t === MsgType.PreVoteResp;
}

export function voteRespType(t: MsgType): MsgType {
  return t === MsgType.Vote ? MsgType.VoteResp : MsgType.PreVoteResp;
}

export class RaftInvariantError extends Error {
  override name = 'RaftInvariantError';
}

/** Asserts an invariant of the algorithm; a failure is a bug, never a runtime condition. */
export function invariant(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new RaftInvariantError(msg);
}
