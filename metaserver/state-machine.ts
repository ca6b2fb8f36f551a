// The metadata state machine of one copyset: applies Raft entries to its keys in the shared
// level database. The applied index is written in the same batch as the changes, and entries
// at or below it are skipped, so replay after a crash applies nothing twice. Requests with a
// request id have their result recorded, so a retried request returns it instead of applying.
import type { Logger } from '../common/log.js';
import { silentLogger } from '../common/log.js';
import { StatusCode, TierfsError } from '../common/status.js';
import { CopysetKeys, rangeEnd } from './keys.js';
import { Overlay, type MetaDb } from './overlay.js';
import { ApplyContext } from './apply-context.js';
import * as inodeOps from './apply-inode.js';
import * as dentryOps from './apply-dentry.js';
import * as posixOps from './apply-posix.js';
import { QUOTA_HANDLERS } from './quota.js';
import * as appendOps from './apply-append.js';
import * as trashOps from './apply-trash.js';
import { dumpFence } from './apply-fence.js';
import type { LogEntryForApply, StateMachine } from './raft-types.js';
import { PRUNE_EVERY, type DentryRecord, type MetaOp, type OpResult, type PartitionRecord } from './records.js';
import { decodeFrames, encodeFrames } from './snapshot-frames.js';
import { RecordStore } from './record-store.js';
import { plannedReads, type PrefetchPlan } from './apply-prefetch.js';

type Handler = (ctx: ApplyContext, op: never) => Promise<OpResult>;
const HANDLERS: Record<MetaOp['op'], Handler> = {
  createPartition: inodeOps.createPartition,
  deletePartition: inodeOps.deletePartition,
  createInode: inodeOps.createInode,
  updateInode: inodeOps.updateInode,
  deleteInode: inodeOps.deleteInode,
  setXattr: inodeOps.setXattr,
  removeXattr: inodeOps.removeXattr,
  modifySlices: inodeOps.modifySlices,
  releaseOrphan: inodeOps.releaseOrphan,
  purgeInode: inodeOps.purgeInode,
  createDentry: dentryOps.createDentry,
  createNode: dentryOps.createNode,
  deleteDentry: dentryOps.deleteDentry,
  prepareRename: dentryOps.prepareRename,
  commitRename: dentryOps.commitRename,
  finishRename: dentryOps.finishRename,
  resolveRename: dentryOps.resolveRename,
  forgetRenames: dentryOps.forgetRenames,
  dumpFence,
  removeNode: posixOps.removeNode,
  linkNode: posixOps.linkNode,
  renameNode: posixOps.renameNode,
  exchangeNodes: posixOps.exchangeNodes,
  ...QUOTA_HANDLERS,
  appendRun: appendOps.appendRun,
  trashNode: trashOps.trashNode,
};

/**
 * Results pruned by one entry at most. Which ones is chosen by the entry's content and the
 * committed watermark, so every replica deletes the same keys.
 */
const PRUNE_PER_ENTRY = 256;

export class MetaStateMachine implements StateMachine {
  readonly keys: CopysetKeys;
  /** Committed records through a cache; every apply reads and commits through it. */
  readonly store: RecordStore;
  readonly partitions = new Map<number, PartitionRecord>();
  private applied = { index: 0, term: 0 };
  /** apply, snapshot and restore run one at a time. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly db: MetaDb,
    poolId: number,
    copysetId: number,
    private readonly logger: Logger = silentLogger,
  ) {
    this.keys = new CopysetKeys(poolId, copysetId);
    this.store = new RecordStore(db, this.keys);
  }

  /** Loads the applied index and partition records from the database. */
  async load(): Promise<this> {
    const applied = await this.db.get(this.keys.applied());
    this.applied = applied ? (JSON.parse(applied) as { index: number; term: number }) : { index: 0, term: 0 };
    this.partitions.clear();
    const prefix = this.keys.partitionPrefix();
    for await (const [, value] of this.db.iterator({ gte: prefix, lt: rangeEnd(prefix) })) {
      const p = JSON.parse(value) as PartitionRecord;
      this.partitions.set(p.partitionId, p);
    }
    await this.store.reset(this.partitions.keys());
    return this;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  async appliedIndex(): Promise<number> {
    return this.applied.index;
  }

  appliedTerm(): number {
    return this.applied.term;
  }

  apply(entries: LogEntryForApply[]): Promise<unknown[]> {
    return this.serial(async () => {
      const batch = new Overlay(this.store);
      const results: unknown[] = [];
      let last = this.applied;
      const ops = entries.map((e) => (e.index <= this.applied.index || e.data.length === 0 ? null : (JSON.parse(e.data.toString('utf8')) as MetaOp)));
      await this.prefetch(ops);
      for (const [i, entry] of entries.entries()) {
        if (entry.index <= this.applied.index) {
          results.push({ code: StatusCode.OK, message: 'applied before' } satisfies OpResult);
          continue;
        }
        last = { index: entry.index, term: entry.term };
        const op = ops[i];
        if (!op) {
          results.push(null); // a leader's empty entry
          continue;
        }
        results.push(await this.applyOne(batch, op));
      }
      if (last.index > this.applied.index) {
        batch.putJson(this.keys.applied(), last);
        await batch.commit();
        this.applied = last;
      }
      return results;
    });
  }

  /**
   * Starts reading what `op` will read when applied, on the leader while the entry is being
   * replicated, so its apply finds the records cached. Only a guess: nothing waits for it.
   */
  warm(op: MetaOp): void {
    const plan: PrefetchPlan = { keys: [], names: [] };
    plannedReads(this.keys, op, plan);
    this.store.warm(plan.keys);
  }

  /**
   * Warms the record cache with what the operations will read: their own keys in one level
   * read, then the inodes their existing names point to in a second.
   */
  private async prefetch(ops: Array<MetaOp | null>): Promise<void> {
    const plan: PrefetchPlan = { keys: [], names: [] };
    for (const op of ops) if (op) plannedReads(this.keys, op, plan);
    await this.store.prefetch(plan.keys);
    const targets: string[] = [];
    for (const { pid, key, more } of plan.names) {
      const raw = this.store.cached(key);
      if (!raw) continue;
      const ino = (JSON.parse(raw) as DentryRecord).ino;
      if (more) targets.push(...more(ino));
      const fsId = this.partitions.get(pid)?.fsId;
      for (const p of this.partitions.values()) {
        if (p.fsId === fsId && ino >= p.start && ino <= p.end) targets.push(this.keys.inode(p.partitionId, ino));
      }
    }
    await this.store.prefetch(targets);
  }

  private async applyOne(batch: Overlay, op: MetaOp): Promise<OpResult> {
    const rid = 'rid' in op ? op.rid : undefined;
    if (rid) {
      const recorded = await batch.getJson<OpResult>(this.keys.request(rid.clientId, rid.seq));
      if (recorded) return recorded;
      if (rid.seq % PRUNE_EVERY === 0) await this.pruneRequests(batch, rid.clientId, rid.lowSeq);
    }
    const child = new Overlay(this.store, batch);
    const ctx = new ApplyContext(this.keys, child, this.partitions);
    let result: OpResult;
    try {
      result = await HANDLERS[op.op](ctx, op as never);
      ctx.finish();
      child.mergeInto(batch);
    } catch (err) {
      if (err instanceof TierfsError) {
        result = { code: err.code, message: err.message };
      } else {
        // A bug, not a user error: every replica fails the same way, so answer INTERNAL.
        this.logger.error({ err, op: op.op }, 'apply failed');
        result = { code: StatusCode.INTERNAL, message: `apply ${op.op}: ${err instanceof Error ? err.message : String(err)}` };
      }
    }
    if (rid) batch.putJson(this.keys.request(rid.clientId, rid.seq), result);
    return result;
  }

  /**
   * Deletes the client's results in [watermark, lowSeq) by key, without looking: the
   * watermark (`requestWatermark`) says where the last prune stopped. A range scan here (as
   * this did before) waited for every queued level write and then stepped over the
   * tombstones of all the client's earlier deletions: its cost grew with the client's age and
   * it was most of a create's apply at concurrency 64. A client first seen by an older
   * version has no watermark yet: one scan finds its oldest result and starts it there.
   */
  private async pruneRequests(batch: Overlay, clientId: string, lowSeq: number): Promise<void> {
    if (lowSeq <= 0) return;
    const mark = this.keys.requestWatermark(clientId);
    let from = await batch.getJson<number>(mark);
    if (from === undefined) {
      const oldest = await batch.keys(this.keys.requestPrefix(clientId), this.keys.request(clientId, lowSeq), 1);
      from = oldest.length > 0 ? parseInt(oldest[0]!.slice(this.keys.requestPrefix(clientId).length), 16) : lowSeq;
    }
    if (from >= lowSeq) return;
    const to = Math.min(lowSeq, from + PRUNE_PER_ENTRY);
    for (let seq = from; seq < to; seq++) batch.del(this.keys.request(clientId, seq));
    batch.putJson(mark, to);
  }

  snapshot(): Promise<{ index: number; term: number; chunks: AsyncIterable<Buffer> }> {
    return this.readAt(() => [this.keys.prefix]).then(({ index, term, pairs }) => ({ index, term, chunks: encodeFrames(pairs) }));
  }

  /**
   * The keys under the prefixes `prefixes()` names, as they are at one applied index: taken
   * between two applies from a level snapshot, streamed after, while applies go on (raft
   * snapshots, and `tierfs dump` through dump-service.ts). Iterate the pairs to the end or
   * break out of the loop: either releases the snapshot.
   */
  readAt(prefixes: () => string[]): Promise<{ index: number; term: number; pairs: AsyncIterable<[string, string]> }> {
    return this.serial(async () => {
      await this.store.settled();
      const snap = this.db.snapshot();
      const { index, term } = this.applied;
      const ranges = prefixes();
      const db = this.db;
      async function* pairs(): AsyncGenerator<[string, string]> {
        try {
          for (const prefix of ranges) yield* db.iterator({ gte: prefix, lt: rangeEnd(prefix), snapshot: snap });
        } finally {
          await snap.close();
        }
      }
      return { index, term, pairs: pairs() };
    });
  }

  restore(index: number, term: number, chunks: AsyncIterable<Buffer>): Promise<void> {
    return this.serial(async () => {
      await this.store.settled();
      await this.clearAll();
      for await (const pairs of decodeFrames(chunks)) {
        for (const [key] of pairs) {
          if (!key.startsWith(this.keys.prefix)) throw new TierfsError(StatusCode.INTERNAL, `snapshot key ${key} is outside copyset`);
        }
        await this.db.batch(pairs.map(([key, value]) => ({ type: 'put' as const, key, value })));
      }
      // The snapshot covers the log up to `index`: the sender's own applied key may be lower
      // (its last entries were no-ops), and a restart must not find us behind the log.
      await this.db.put(this.keys.applied(), JSON.stringify({ index, term }));
      await this.load();
      this.logger.info({ copyset: this.keys.copysetId, index, partitions: this.partitions.size }, 'restored from snapshot');
    });
  }

  onFailure(cb: (err: Error) => void): void {
    this.store.onFailure = cb;
  }

  /** Makes everything applied so far durable (apply writes without fsync; raft calls this before compacting its log). */
  flush(): Promise<void> {
    return this.serial(async () => {
      await this.store.settled();
      await this.db.put(this.keys.applied(), JSON.stringify(this.applied), { sync: true });
    });
  }

  /** Deletes this copyset's keys once any apply in progress finished (the copyset left this server). */
  destroy(): Promise<void> {
    return this.serial(() => this.clearAll());
  }

  /** Deletes every key of this copyset. */
  async clearAll(): Promise<void> {
    await this.store.settled().catch(() => undefined); // a failed write does not matter to keys being deleted
    await this.db.clear({ gte: this.keys.prefix, lt: rangeEnd(this.keys.prefix) });
    this.partitions.clear();
    await this.store.reset([]);
    this.applied = { index: 0, term: 0 };
  }
}
