// The quotas of each filesystem for ClusterStatus and the status page. They live in the
// metaservers (every quota record of a filesystem in the partition holding the root inode,
// metaserver/quota.ts), so the leader asks that partition's copyset leader with one ListQuota,
// at most once a second per filesystem, serving the last answer meanwhile.
import type * as grpc from '@grpc/grpc-js';
import { CHANNEL_OPTIONS, ClientsByAddress, clientCredentials, loadProto, unary } from '../common/grpc.js';
import { check } from '../common/status.js';
import type { ProtoGrpcType } from '../proto/gen/metaserver.js';
import type { QuotaListResponse__Output } from '../proto/gen/tierfs/metaserver/QuotaListResponse.js';
import type { FsQuota } from '../proto/gen/tierfs/mds/FsQuota.js';
import { copysetKey, type MdsState } from './state.js';

const FRESH_MS = 1000;
const CALL_TIMEOUT_MS = 1000;

export interface FsQuotas {
  quotas: FsQuota[];
  /** Why they could not be read ("" when they were). */
  error: string;
}

export class StatusQuotas {
  private readonly clients = new ClientsByAddress<grpc.Client>((address) => {
    const Ctor = loadProto<ProtoGrpcType>('metaserver.proto').tierfs.metaserver.MetaServerService;
    return new Ctor(address, clientCredentials(), CHANNEL_OPTIONS);
  });
  private readonly cached = new Map<number, { atMs: number; last: FsQuotas | null; reading: Promise<FsQuotas> | null }>();

  constructor(private readonly state: MdsState) {}

  private client(address: string): grpc.Client {
    return this.clients.get(address);
  }

  /**
   * The quotas as last read: a read older than FRESH_MS is renewed in the background and the
   * last answer served meanwhile, so a status call never waits on a slow or dead metaserver
   * (only the first one of a filesystem does, for at most CALL_TIMEOUT_MS per try).
   */
  async of(fsId: number): Promise<FsQuotas> {
    let entry = this.cached.get(fsId);
    if (!entry) {
      entry = { atMs: 0, last: null, reading: null };
      this.cached.set(fsId, entry);
    }
    if (Date.now() - entry.atMs >= FRESH_MS && !entry.reading) {
      const e = entry;
      e.atMs = Date.now();
      e.reading = this.read(fsId)
        .catch((err: unknown) => ({ quotas: [], error: err instanceof Error ? err.message : String(err) }))
        .then((v) => {
          e.last = v;
          e.reading = null;
          return v;
        });
    }
    return entry.last ?? (await entry.reading!);
  }

  private async read(fsId: number): Promise<FsQuotas> {
    const root = this.state.partitionsOf(fsId).find((p) => p.created && p.start <= 1 && 1 <= p.end);
    if (!root) return { quotas: [], error: 'the partition of the root inode is not created yet' };
    const key = copysetKey(root.poolId, root.copysetId);
    const leader = this.state.copysetRuntime.get(key)?.leader ?? '';
    const peers = this.state.copysets.get(key)?.peers ?? [];
    const ref = { fs_id: fsId, pool_id: root.poolId, copyset_id: root.copysetId, partition_id: root.partitionId };
    let hint = leader || peers[0] || '';
    // One NOT_LEADER hint is followed: the MDS's view of the leader lags a heartbeat at most.
    for (let attempt = 0; attempt < 2 && hint; attempt++) {
      const res = await unary<object, QuotaListResponse__Output>(this.client(hint), 'ListQuota', { ref }, CALL_TIMEOUT_MS);
      if (res.status?.code === 'NOT_LEADER' && res.status.leader_hint && attempt === 0) {
        hint = res.status.leader_hint;
        continue;
      }
      check(res.status, `ListQuota of fs ${fsId} at ${hint}`);
      const quotas = res.quotas.map((q) => ({ ino: q.ino, path: q.path, max_bytes: q.max_bytes, max_inodes: q.max_inodes, used_bytes: q.used_bytes, used_inodes: q.used_inodes }));
      return { quotas: quotas.sort((a, b) => a.path.localeCompare(b.path)), error: '' };
    }
    return { quotas: [], error: `copyset ${root.poolId}.${root.copysetId} has no known leader` };
  }

  close(): void {
    this.clients.closeAll();
  }
}
