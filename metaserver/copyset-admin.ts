// Copyset administration shared by the CopysetService (called by the MDS and the CLI) and
// the heartbeat loop (changes the MDS sends back): peers, leadership, partitions.
import * as grpc from '@grpc/grpc-js';
import { CHANNEL_OPTIONS, clientCredentials, loadProto, unary } from '../common/grpc.js';
import { check, StatusCode, TierfsError } from '../common/status.js';
import type { ProtoGrpcType } from '../proto/gen/copyset.js';
import type { StatusResponse__Output } from '../proto/gen/tierfs/copyset/StatusResponse.js';
import type { CopysetStatus } from '../proto/gen/tierfs/copyset/CopysetStatus.js';
import type { CopysetStatusResponse__Output } from '../proto/gen/tierfs/copyset/CopysetStatusResponse.js';
import type { ReplicatedGroup } from './raft-types.js';

/** One copyset replica as the admin functions see it: metaserver and chunkserver copysets alike. */
export interface HeldCopyset {
  readonly poolId: number;
  readonly copysetId: number;
  readonly name: string;
  readonly group: ReplicatedGroup;
}

/** The copysets a server holds (metaserver/copyset-manager.ts, chunkserver/copysets.ts). */
export interface CopysetHolder {
  readonly selfAddress: string;
  create(poolId: number, copysetId: number, peers: string[]): Promise<HeldCopyset>;
  remove(poolId: number, copysetId: number): Promise<void>;
  removeIfNotMember(poolId: number, copysetId: number): Promise<boolean>;
  get(poolId: number, copysetId: number): HeldCopyset;
  has(poolId: number, copysetId: number): boolean;
  list(): HeldCopyset[];
}

export function copysetStatus(node: HeldCopyset): CopysetStatus {
  const st = node.group.status();
  return {
    pool_id: node.poolId, copyset_id: node.copysetId, peers: st.voters, learners: st.learners, leader: st.leader ?? '',
    term: st.term, epoch: st.epoch, commit_index: st.commitIndex, applied_index: st.appliedIndex, is_leader: node.group.isLeader(),
  };
}

/** Asks `address` to create the copyset as a joining member (it is not in `peers`). */
export async function createCopysetOn(address: string, poolId: number, copysetId: number, peers: string[]): Promise<void> {
  const Ctor = loadProto<ProtoGrpcType>('copyset.proto').tierfs.copyset.CopysetService;
  const client = new Ctor(address, clientCredentials(), CHANNEL_OPTIONS);
  try {
    const res = await unary<object, StatusResponse__Output>(client, 'CreateCopyset', { pool_id: poolId, copyset_id: copysetId, peers }, 10_000);
    check(res.status, `CreateCopyset ${poolId}.${copysetId} on ${address}`);
  } finally {
    client.close();
  }
}

/** The members (voters and learners) `address` has for the copyset, or null when it does not hold it or cannot be reached. */
export async function membersOn(address: string, poolId: number, copysetId: number): Promise<string[] | null> {
  const Ctor = loadProto<ProtoGrpcType>('copyset.proto').tierfs.copyset.CopysetService;
  const client = new Ctor(address, clientCredentials(), CHANNEL_OPTIONS);
  try {
    const res = await unary<object, CopysetStatusResponse__Output>(client, 'GetCopysetStatus', { pool_id: poolId, copyset_id: copysetId }, 1500);
    return res.status?.code === StatusCode.OK && res.copyset ? [...res.copyset.peers, ...res.copyset.learners] : null;
  } catch {
    return null;
  } finally {
    client.close();
  }
}

function leaderNode(manager: CopysetHolder, poolId: number, copysetId: number): HeldCopyset {
  const node = manager.get(poolId, copysetId);
  if (!node.group.isLeader()) {
    throw new TierfsError(StatusCode.NOT_LEADER, `not the leader of copyset ${poolId}.${copysetId}`, node.group.leaderAddress() ?? '');
  }
  return node;
}

/** Adds a member: the new server creates the copyset empty and joins; the leader then adds it. */
export async function addPeer(manager: CopysetHolder, poolId: number, copysetId: number, peer: string): Promise<void> {
  const node = leaderNode(manager, poolId, copysetId);
  const st = node.group.status();
  if (st.voters.includes(peer)) return;
  if (!st.learners.includes(peer)) await createCopysetOn(peer, poolId, copysetId, st.voters);
  await node.group.addPeer(peer);
}

export async function removePeer(manager: CopysetHolder, poolId: number, copysetId: number, peer: string): Promise<void> {
  const node = leaderNode(manager, poolId, copysetId);
  const st = node.group.status();
  if (!st.voters.includes(peer) && !st.learners.includes(peer)) return;
  if (peer === manager.selfAddress) {
    // A leader does not remove itself: hand leadership to another voter first; the MDS retries.
    const other = st.voters.find((v) => v !== peer);
    if (other) await node.group.transferLeader(other);
    throw new TierfsError(StatusCode.NOT_LEADER, `transferring leadership of ${poolId}.${copysetId} before removing ${peer}`, other ?? '');
  }
  await node.group.removePeer(peer);
}

export async function changePeer(manager: CopysetHolder, poolId: number, copysetId: number, peer: string, oldPeer: string): Promise<void> {
  await addPeer(manager, poolId, copysetId, peer);
  if (oldPeer) await removePeer(manager, poolId, copysetId, oldPeer);
}

export async function transferLeader(manager: CopysetHolder, poolId: number, copysetId: number, peer: string): Promise<void> {
  const node = manager.get(poolId, copysetId);
  if (node.group.leaderAddress() === peer) return;
  await leaderNode(manager, poolId, copysetId).group.transferLeader(peer);
}
