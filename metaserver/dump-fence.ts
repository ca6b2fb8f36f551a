// The CLI side of the dump fence (apply-fence.ts): `tierfs dump` fences every copyset of the
// filesystem, waits until none holds a prepared rename, takes the records, and checks the
// fence held without a gap all along. Then no rename across copysets was in doubt while the
// records were taken, so each rename is wholly in every copyset's records or wholly out.
import { randomUUID } from 'node:crypto';
import { CHANNEL_OPTIONS, clientCredentials, loadProto, sleep } from '../common/grpc.js';
import { check, StatusCode, TierfsError } from '../common/status.js';
import type { ProtoGrpcType } from '../proto/gen/metadump.js';
import type { FenceDumpResponse__Output } from '../proto/gen/tierfs/metadump/FenceDumpResponse.js';
import { atCopysetLeader } from './dump-leader.js';

export interface CopysetAddress {
  pool: number;
  copyset: number;
  peers: string[];
  leader: string;
}

/** How long one fence call is tried (leader changes) before the dump fails. */
const CALL_DEADLINE_MS = 30_000;
/** How long prepared renames may take to drain (their clients finish them, or the resolver after txResolveAfterMs). */
const DRAIN_DEADLINE_MS = 60_000;

export class DumpFence {
  private readonly fenceId = randomUUID();
  private timer: NodeJS.Timeout | null = null;
  /** Every copyset has been fenced once; from then on each renewal must find the fence in force. */
  private raised = false;
  /** A renewal found the fence had lapsed somewhere: renames may have gone through. */
  private lapsed = false;

  private constructor(
    private readonly fsId: number,
    private readonly copysets: CopysetAddress[],
    private readonly leaseMs: number,
  ) {}

  /** Fences every copyset and keeps the fence renewed (every third of the lease) until lift(). */
  static async raise(fsId: number, copysets: CopysetAddress[], leaseMs: number): Promise<DumpFence> {
    const fence = new DumpFence(fsId, copysets, leaseMs);
    try {
      await Promise.all(copysets.map((c) => fence.call(c, Date.now() + leaseMs)));
      fence.raised = true;
    } catch (err) {
      await fence.lift();
      throw err;
    }
    fence.timer = setInterval(() => void fence.renew().catch(() => undefined), Math.max(50, Math.floor(leaseMs / 3)));
    return fence;
  }

  /** Waits until no copyset holds a prepared rename of the filesystem. */
  async drained(): Promise<void> {
    const deadline = Date.now() + DRAIN_DEADLINE_MS;
    let pending = [...this.copysets];
    while (pending.length > 0) {
      // A copyset seen without prepared renames stays so: the fence stops new ones.
      const counts = await Promise.all(pending.map(async (c) => (await this.call(c, Date.now() + this.leaseMs)).prepared));
      pending = pending.filter((_, i) => counts[i]! > 0);
      if (pending.length === 0) return;
      if (Date.now() > deadline) {
        throw new TierfsError(StatusCode.UNAVAILABLE, `dump: renames still prepared after ${DRAIN_DEADLINE_MS / 1000} s in copysets ${pending.map((c) => `${c.pool}.${c.copyset}`).join(' ')}`);
      }
      await sleep(100);
    }
  }

  /** Renews the fence on every copyset; false when it lapsed anywhere since it was raised. */
  async held(): Promise<boolean> {
    await this.renew();
    return !this.lapsed;
  }

  /** Lifts the fence (best effort: a fence left behind lapses after its lease). */
  async lift(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await Promise.all(this.copysets.map((c) => this.call(c, 0).catch(() => undefined)));
  }

  private async renew(): Promise<void> {
    await Promise.all(this.copysets.map((c) => this.call(c, Date.now() + this.leaseMs)));
  }

  /** One FenceDump at the copyset's leader (following NOT_LEADER hints); notes a lapse. */
  private call(c: CopysetAddress, untilMs: number): Promise<FenceDumpResponse__Output> {
    const Ctor = loadProto<ProtoGrpcType>('metadump.proto').tierfs.metadump.MetaDumpService;
    return atCopysetLeader(c, 'dump fence', CALL_DEADLINE_MS, async (address) => {
      const client = new Ctor(address, clientCredentials(), CHANNEL_OPTIONS);
      try {
        const res = await new Promise<FenceDumpResponse__Output>((resolve, reject) => {
          client.FenceDump({ pool_id: c.pool, copyset_id: c.copyset, fs_id: this.fsId, fence_id: this.fenceId, until_ms: untilMs }, (err, r) => (err || !r ? reject(err ?? new Error('no response')) : resolve(r)));
        });
        check(res.status, `dump fence of copyset ${c.pool}.${c.copyset}`);
        if (untilMs > 0 && this.raised && !res.held) this.lapsed = true;
        return res;
      } finally {
        client.close();
      }
    });
  }
}
