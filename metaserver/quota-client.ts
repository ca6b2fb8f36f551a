// Quota calls of one filesystem (quota.ts): every quota record lives in the partition of the
// root inode, so each call goes to that partition's copyset leader.
import type { QuotaListResponse__Output } from '../proto/gen/tierfs/metaserver/QuotaListResponse.js';
import type { RemoteMetaClient } from './client.js';
import { ROOT_INO } from './meta-client.js';
import type { QuotaDelta, QuotaRecord } from './quota.js';

export type { QuotaDelta, QuotaRecord } from './quota.js';

export interface QuotaLimits {
  maxBytes: number;
  maxInodes: number;
}

function fromMsg(res: QuotaListResponse__Output): QuotaRecord[] {
  return res.quotas.map((q) => ({
    ino: Number(q.ino), maxBytes: Number(q.max_bytes), maxInodes: Number(q.max_inodes),
    usedBytes: Number(q.used_bytes), usedInodes: Number(q.used_inodes), path: q.path,
  }));
}

export class QuotaClient {
  constructor(private readonly meta: RemoteMetaClient) {}

  private async call(method: string, req: object, write: boolean): Promise<QuotaRecord[]> {
    const route = await this.meta.router.route(ROOT_INO);
    return fromMsg(await this.meta.call<QuotaListResponse__Output>(route, method, req, write));
  }

  list(): Promise<QuotaRecord[]> {
    return this.call('ListQuota', {}, false);
  }

  /** Creates or changes the limits; `usage` (a fresh count of the tree) replaces the usage. */
  async set(ino: number, path: string, limits: QuotaLimits, usage?: { bytes: number; inodes: number }): Promise<QuotaRecord> {
    const quota = { ino, path, max_bytes: limits.maxBytes, max_inodes: limits.maxInodes, used_bytes: usage?.bytes ?? 0, used_inodes: usage?.inodes ?? 0 };
    const [after] = await this.call('SetQuota', { quota, set_usage: usage !== undefined, keep_limits: false }, true);
    return after!;
  }

  /** Replaces the usage only (quota check --repair). */
  async setUsage(ino: number, usage: { bytes: number; inodes: number }): Promise<QuotaRecord> {
    const quota = { ino, path: '', max_bytes: 0, max_inodes: 0, used_bytes: usage.bytes, used_inodes: usage.inodes };
    const [after] = await this.call('SetQuota', { quota, set_usage: true, keep_limits: true }, true);
    return after!;
  }

  async delete(ino: number): Promise<void> {
    await this.call('DeleteQuota', { ino }, true);
  }

  /** Adds the deltas in one Raft entry; answers every quota after it. */
  addUsage(deltas: QuotaDelta[]): Promise<QuotaRecord[]> {
    return this.call('AddQuotaUsage', { deltas }, true);
  }
}
