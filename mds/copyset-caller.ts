// The MDS's calls into metaservers' CopysetService: creating copysets on each peer and
// partitions through the copyset's leader (following NOT_LEADER hints, waiting for a
// freshly created copyset to elect one).
import * as grpc from '@grpc/grpc-js';
import { CHANNEL_OPTIONS, clientCredentials, loadProto, sleep, unary } from '../common/grpc.js';
import { StatusCode, TierfsError } from '../common/status.js';
import type { ProtoGrpcType } from '../proto/gen/copyset.js';
import type { CopysetServiceClient } from '../proto/gen/tierfs/copyset/CopysetService.js';
import type { StatusResponse__Output } from '../proto/gen/tierfs/copyset/StatusResponse.js';
import type { PartitionInfo } from '../proto/gen/tierfs/copyset/PartitionInfo.js';

export class CopysetCaller {
  private readonly clients = new Map<string, CopysetServiceClient>();

  constructor(private readonly timeoutMs = 5000) {}

  private client(address: string): CopysetServiceClient {
    let c = this.clients.get(address);
    if (!c) {
      const Ctor = loadProto<ProtoGrpcType>('copyset.proto').tierfs.copyset.CopysetService;
      c = new Ctor(address, clientCredentials(), CHANNEL_OPTIONS);
      this.clients.set(address, c);
    }
    return c;
  }

  /** Creates the copyset on one peer; EXISTS counts as done (a retry after a lost answer). */
  async createCopyset(address: string, poolId: number, copysetId: number, peers: string[]): Promise<void> {
    const res = await unary<object, StatusResponse__Output>(this.client(address), 'CreateCopyset', { pool_id: poolId, copyset_id: copysetId, peers }, this.timeoutMs);
    const code = res.status?.code;
    if (code !== StatusCode.OK && code !== StatusCode.EXISTS) {
      throw new TierfsError((code as StatusCode) ?? StatusCode.INTERNAL, `CreateCopyset ${poolId}/${copysetId} on ${address}: ${res.status?.message ?? 'no status'}`);
    }
  }

  async deleteCopyset(address: string, poolId: number, copysetId: number): Promise<void> {
    await unary(this.client(address), 'DeleteCopyset', { pool_id: poolId, copyset_id: copysetId }, this.timeoutMs);
  }

  /**
   * Sends a request that must reach the copyset leader: tries the known leader, then follows
   * hints, then every peer, until `deadlineMs` passes. EXISTS counts as done.
   */
  async callLeader(method: 'CreatePartition' | 'DeletePartition', req: object, peers: string[], leaderHint: string, deadlineMs: number): Promise<string> {
    const until = Date.now() + deadlineMs;
    let target = leaderHint || peers[0] || '';
    let next = 0;
    let last = 'no peers';
    let attempt = 0;
    while (Date.now() < until) {
      try {
        const res = await unary<object, StatusResponse__Output>(this.client(target), method, req, Math.min(this.timeoutMs, Math.max(until - Date.now(), 100)));
        const st = res.status;
        if (!st || st.code === StatusCode.OK || st.code === StatusCode.EXISTS) return target;
        if (st.code !== StatusCode.NOT_LEADER && st.code !== StatusCode.UNAVAILABLE) throw new TierfsError(st.code as StatusCode, `${method} on ${target}: ${st.message}`);
        last = `${target}: ${st.code} ${st.message}`;
        if (st.leader_hint && st.leader_hint !== target) {
          target = st.leader_hint;
          continue;
        }
      } catch (err) {
        if (!(err instanceof TierfsError) || (err.code !== StatusCode.UNAVAILABLE && err.code !== StatusCode.TIMEOUT)) throw err;
        last = `${target}: ${err.message}`;
      }
      // No leader yet (a new copyset is still electing one) or the peer is down: next peer.
      target = peers[next++ % peers.length] ?? target;
      attempt++;
      await sleep(Math.min(100 * attempt, 500));
    }
    throw new TierfsError(StatusCode.UNAVAILABLE, `${method}: no leader of copyset answered within ${deadlineMs} ms (last: ${last})`);
  }

  createPartition(info: PartitionInfo, peers: string[], leaderHint: string, deadlineMs: number): Promise<string> {
    return this.callLeader('CreatePartition', { partition: info }, peers, leaderHint, deadlineMs);
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
