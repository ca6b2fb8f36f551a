// A filesystem's partitions as the client sees them: which partition holds an inode id,
// and which writable partition takes the next new inode (round robin, skipping read-only
// ones, asking the MDS for more when few writable remain).
import type { Logger } from '../common/log.js';
import { silentLogger } from '../common/log.js';
import { StatusCode, TierfsError } from '../common/status.js';
import type { CopysetLocator } from './meta-rpc.js';

/** A partition and where its copyset lives (the MDS's PartitionLocation). */
export interface PartitionLocationInfo {
  partition: { fs_id: number; pool_id: number; copyset_id: number; partition_id: number; start: number; end: number } | null;
  peers: string[];
  leader: string;
  read_only: boolean;
}

/** What the client needs from the MDS; MdsClient satisfies it. */
export interface PartitionDirectory extends CopysetLocator {
  listPartitions(fsId: number): Promise<PartitionLocationInfo[]>;
  createPartitions(fsId: number, count: number): Promise<PartitionLocationInfo[]>;
}

export interface PartitionRoute {
  fsId: number;
  poolId: number;
  copysetId: number;
  partitionId: number;
  start: number;
  end: number;
  peers: string[];
  leader: string;
  readOnly: boolean;
}

export class PartitionRouter {
  private routes: PartitionRoute[] = [];
  private next = 0;
  private refreshing: Promise<void> | null = null;
  private growing: Promise<void> | null = null;

  constructor(
    private readonly fsId: number,
    private readonly directory: PartitionDirectory,
    private readonly onLocation: (r: PartitionRoute) => void,
    private readonly logger: Logger = silentLogger,
    /** Ask for more partitions when fewer writable ones than this remain. */
    private readonly minWritable = 2,
  ) {}

  private adopt(list: PartitionLocationInfo[]): void {
    const routes: PartitionRoute[] = [];
    for (const loc of list) {
      const p = loc.partition;
      if (!p || p.fs_id !== this.fsId) continue;
      const known = this.routes.find((r) => r.partitionId === p.partition_id);
      const r: PartitionRoute = {
        fsId: p.fs_id, poolId: p.pool_id, copysetId: p.copyset_id, partitionId: p.partition_id, start: p.start, end: p.end,
        peers: loc.peers, leader: loc.leader, readOnly: loc.read_only || (known?.readOnly ?? false),
      };
      routes.push(r);
      this.onLocation(r);
    }
    this.routes = routes.sort((a, b) => a.start - b.start);
  }

  refresh(): Promise<void> {
    this.refreshing ??= this.directory
      .listPartitions(this.fsId)
      .then((list) => this.adopt(list))
      .finally(() => {
        this.refreshing = null;
      });
    return this.refreshing;
  }

  private find(ino: number): PartitionRoute | undefined {
    return this.routes.find((r) => ino >= r.start && ino <= r.end);
  }

  /** The partition holding inode `ino`; NOT_FOUND when no partition of the fs covers it. */
  async route(ino: number): Promise<PartitionRoute> {
    let r = this.find(ino);
    if (!r) {
      await this.refresh();
      r = this.find(ino);
    }
    if (!r) throw new TierfsError(StatusCode.NOT_FOUND, `no partition of fs ${this.fsId} holds inode ${ino}`);
    return r;
  }

  all(): PartitionRoute[] {
    return [...this.routes];
  }

  markReadOnly(partitionId: number): void {
    const r = this.routes.find((x) => x.partitionId === partitionId);
    if (r) r.readOnly = true;
  }

  /** The next writable partition for a new inode. */
  async writable(): Promise<PartitionRoute> {
    if (this.routes.length === 0) await this.refresh();
    let open = this.routes.filter((r) => !r.readOnly);
    if (open.length < this.minWritable) {
      const grow = this.grow();
      if (open.length === 0) {
        await grow;
        open = this.routes.filter((r) => !r.readOnly);
      } else {
        grow.catch((err: unknown) => this.logger.warn({ err }, 'asking the MDS for more partitions failed'));
      }
    }
    if (open.length === 0) throw new TierfsError(StatusCode.NO_SPACE, `fs ${this.fsId} has no writable partition`);
    return open[this.next++ % open.length]!;
  }

  /** A writable partition in the same copyset as `near` (`near` itself first), if there is one. */
  writableNear(near: PartitionRoute): PartitionRoute | undefined {
    if (!near.readOnly && this.routes.some((r) => r.partitionId === near.partitionId)) return near;
    return this.routes.find((r) => !r.readOnly && r.poolId === near.poolId && r.copysetId === near.copysetId);
  }

  private grow(): Promise<void> {
    this.growing ??= this.directory
      .createPartitions(this.fsId, this.minWritable)
      .then(() => this.refresh())
      .finally(() => {
        this.growing = null;
      });
    return this.growing;
  }
}
