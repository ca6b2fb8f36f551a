// One copyset on this metaserver: its Raft group and its metadata state machine. Writes go
// through the group's log; reads are served by the leader after a read barrier. The leader
// also runs the copyset's background work: emptying the trash and resolving abandoned
// rename transactions.
import type { Logger } from '../common/log.js';
import { silentLogger } from '../common/log.js';
import { StatusCode, TierfsError } from '../common/status.js';
import type { ReplicatedGroup } from './raft-types.js';
import type { MetaStateMachine } from './state-machine.js';
import { MetaReader } from './state-reader.js';
import type { MetaOp, OpResult, TxStateRecord } from './records.js';
import type { SliceRecord } from './meta-client.js';

/** Deletes a removed inode's objects from the object store (provided by s3adaptor or metaserver/s3-deleter.ts). */
export interface ObjectDeleter {
  deleteInodeObjects(fsId: number, ino: number, slices: Map<number, SliceRecord[]>): Promise<void>;
}

/** Asks a rename's source partition for the outcome (aborting it there if it never committed). */
export type RenameResolver = (tx: TxStateRecord) => Promise<boolean>;

export interface CopysetNodeOptions {
  logger?: Logger;
  deleter?: ObjectDeleter;
  resolver?: RenameResolver;
  /** How often the leader looks at the trash and pending transactions. */
  backgroundIntervalMs?: number;
  /** A prepared rename older than this is resolved by the destination's leader. */
  txResolveAfterMs?: number;
  /** How long a rename's outcome stays recorded at its source. Default one day. */
  txRetentionMs?: number;
}

/** Recorded rename outcomes are swept this often. */
const FORGET_EVERY_MS = 10 * 60_000;

export class CopysetNode {
  readonly reader: MetaReader;
  /** The peers named when the copyset was created here (a joiner knows no configuration before its snapshot). */
  initialPeers: string[] = [];
  private readonly logger: Logger;
  private timer: NodeJS.Timeout | null = null;
  private backgroundRunning = false;
  private lastForget = 0;

  constructor(
    readonly poolId: number,
    readonly copysetId: number,
    readonly group: ReplicatedGroup,
    readonly sm: MetaStateMachine,
    private readonly opts: CopysetNodeOptions = {},
  ) {
    this.logger = opts.logger ?? silentLogger;
    this.reader = new MetaReader(sm);
  }

  get name(): string {
    return `${this.poolId}.${this.copysetId}`;
  }

  private notLeader(): TierfsError {
    return new TierfsError(StatusCode.NOT_LEADER, `not the leader of copyset ${this.name}`, this.group.leaderAddress() ?? '');
  }

  /** Proposes the operation and returns its apply result; errors as results carry their code. */
  async write(op: MetaOp): Promise<OpResult> {
    if (!this.group.isLeader()) throw this.notLeader();
    let result: unknown;
    try {
      const proposed = this.group.propose(Buffer.from(JSON.stringify(op)));
      this.sm.warm(op);
      result = await proposed;
    } catch (err) {
      if (err instanceof TierfsError) throw err;
      throw new TierfsError(StatusCode.UNAVAILABLE, `copyset ${this.name}: propose failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    return result as OpResult;
  }

  /** Like write, but a non-OK result becomes a thrown TierfsError. */
  async writeOk(op: MetaOp): Promise<OpResult> {
    const res = await this.write(op);
    if (res.code !== StatusCode.OK) throw new TierfsError(res.code, res.message ?? res.code);
    return res;
  }

  async read<T>(fn: (reader: MetaReader) => Promise<T>): Promise<T> {
    if (!this.group.isLeader()) throw this.notLeader();
    try {
      await this.group.readBarrier();
    } catch (err) {
      if (err instanceof TierfsError) throw err;
      throw new TierfsError(StatusCode.UNAVAILABLE, `copyset ${this.name}: read barrier failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    return fn(this.reader);
  }

  start(): void {
    const every = this.opts.backgroundIntervalMs ?? 1000;
    this.timer = setInterval(() => void this.background(), every);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async background(): Promise<void> {
    if (this.backgroundRunning || !this.group.isLeader()) return;
    this.backgroundRunning = true;
    try {
      await this.emptyTrash();
      await this.resolveAbandonedRenames();
      if (Date.now() - this.lastForget > FORGET_EVERY_MS) {
        await this.writeOk({ op: 'forgetRenames', before: Date.now() - (this.opts.txRetentionMs ?? 24 * 3600_000) });
        this.lastForget = Date.now();
      }
    } catch (err) {
      this.logger.warn({ err, copyset: this.name }, 'background work failed; will retry');
    } finally {
      this.backgroundRunning = false;
    }
  }

  /** Deletes the objects of each queued inode, then the inode itself (through the log). */
  async emptyTrash(limit = 64): Promise<number> {
    const deleter = this.opts.deleter;
    const queued = await this.reader.trash(limit);
    let done = 0;
    for (const { pid, record } of queued) {
      if (!this.group.isLeader()) break;
      if (deleter) {
        const inode = await this.reader.maybeInode(pid, record.ino);
        if (inode) await deleter.deleteInodeObjects(record.fsId, record.ino, await this.reader.slices(pid, record.ino));
      }
      await this.writeOk({ op: 'purgeInode', pid, ino: record.ino });
      done++;
    }
    return done;
  }

  async resolveAbandonedRenames(): Promise<number> {
    const resolver = this.opts.resolver;
    if (!resolver) return 0;
    const olderThan = Date.now() - (this.opts.txResolveAfterMs ?? 5000);
    let done = 0;
    for (const rec of await this.reader.preparedTxs()) {
      if (rec.sinceMs > olderThan || !this.group.isLeader()) continue;
      const committed = await resolver(rec);
      await this.writeOk({ op: 'finishRename', pid: rec.tx.dstPartition, txId: rec.tx.txId, commit: committed, now: Date.now() });
      this.logger.info({ tx: rec.tx.txId, committed }, 'resolved an abandoned rename');
      done++;
    }
    return done;
  }
}
