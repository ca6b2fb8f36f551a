// RaftHost: one per process. Owns the shared level store (group commit), the gRPC transport,
// the tick timer, and the groups. Persist strictly before sending: votes and acks depend on it.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { type Logger, silentLogger } from '../../common/log.js';
import { StatusCode, TierfsError } from '../../common/status.js';
import type { Ready } from '../core/rawnode.js';
import { type ConfState, type Message, MsgType, emptyMessage } from '../core/types.js';
import type { RaftGroup, RaftHostOptions, StateMachine } from './api.js';
import { decodeMessage, encodeMessage } from './codec.js';
import { type RaftClock, type RaftTransport, type SnapshotStaging, realClock, sleepOn } from './env.js';
import { GroupNode } from './group.js';
import { type GroupWrite, RaftLogStore } from './log-store.js';
import { FileSnapshotStaging } from './snapshot-staging.js';
import { GrpcTransport } from './transport.js';

export class RaftHost {
  private readonly groups = new Map<string, GroupNode>();
  private readonly dirty = new Set<GroupNode>();
  private pumping = false;
  private pumpScheduled = false;
  /** Per group, its Readies waiting for a write; and how many store writes are awaited. */
  private readonly groupsInFlight = new Map<GroupNode, number>();
  private writesInFlight = 0;
  private cancelTick: (() => void) | null = null;
  private readonly log: Logger;
  private readonly clock: RaftClock;
  private readonly transport: RaftTransport;
  private removedCbs: Array<(groupId: string) => void> = [];
  private closed = false;

  private constructor(
    private readonly opts: RaftHostOptions,
    private readonly store: RaftLogStore,
    private readonly staging: SnapshotStaging,
  ) {
    this.log = opts.logger ?? silentLogger;
    this.clock = opts.clock ?? realClock;
    const handlers = {
      onMessages: (batch: Buffer[]) => this.onMessages(batch),
      onSnapshot: (header: Buffer, chunks: Buffer[]) => this.onSnapshot(header, chunks),
      onUnreachable: (peer: string, batch: Buffer[]) => this.onUnreachable(peer, batch),
    };
    this.transport = opts.transport ? opts.transport(opts.selfAddress, handlers, this.log) : new GrpcTransport(opts.selfAddress, handlers, this.log);
    this.scheduleTick(opts.tickMs ?? 100);
  }

  static async open(opts: RaftHostOptions): Promise<RaftHost> {
    if (opts.storage) return new RaftHost(opts, new RaftLogStore(opts.storage.log), opts.storage.staging);
    mkdirSync(opts.dataDir, { recursive: true });
    const store = await RaftLogStore.open(join(opts.dataDir, 'raft-log'));
    return new RaftHost(opts, store, new FileSnapshotStaging(join(opts.dataDir, 'snapshots')));
  }

  private scheduleTick(ms: number): void {
    this.cancelTick = this.clock.setTimer(ms, () => {
      if (this.closed) return;
      this.tick();
      this.scheduleTick(ms);
    });
  }

  grpcService(): [grpc.ServiceDefinition, grpc.UntypedServiceImplementation] {
    if (!(this.transport instanceof GrpcTransport)) throw new TierfsError(StatusCode.INTERNAL, 'this RaftHost runs over an injected transport, not gRPC');
    return this.transport.service();
  }

  /** Called with the group id when a membership change removed this node from a group. */
  onGroupRemoved(cb: (groupId: string) => void): void {
    this.removedCbs.push(cb);
  }

  async createGroup(groupId: string, opts: { peers: string[]; stateMachine: StateMachine; join?: boolean }): Promise<RaftGroup> {
    if (this.groups.has(groupId) || (await this.store.hasGroup(groupId))) {
      throw new TierfsError(StatusCode.EXISTS, `raft group ${groupId} already exists on ${this.opts.selfAddress}; use openGroup`);
    }
    if (!opts.join && !opts.peers.includes(this.opts.selfAddress)) {
      throw new TierfsError(StatusCode.INVALID_ARGUMENT, `peers of new group ${groupId} must include this node (${this.opts.selfAddress})`);
    }
    // A new group starts from a snapshot at index 1 holding its first membership; a joiner starts
    // empty and receives everything (membership included) from the leader.
    const bootstrap = opts.join ? null : { index: 1, term: 1, conf: { voters: [...opts.peers].sort(), learners: [], epoch: 0 } };
    await this.store.createGroup(groupId, bootstrap, { term: opts.join ? 0 : 1, vote: '', commit: opts.join ? 0 : 1 });
    return this.openGroup(groupId, opts.stateMachine);
  }

  async openGroup(groupId: string, stateMachine: StateMachine): Promise<RaftGroup> {
    const existing = this.groups.get(groupId);
    if (existing) return existing;
    if (!(await this.store.hasGroup(groupId))) throw new TierfsError(StatusCode.NOT_FOUND, `raft group ${groupId} is not persisted on ${this.opts.selfAddress}`);
    await this.finishPendingRestore(groupId, stateMachine);
    const storage = await this.store.load(groupId);
    const smApplied = await stateMachine.appliedIndex();
    if (smApplied < storage.firstIndex() - 1 && storage.firstIndex() - 1 > 1) {
      throw new TierfsError(StatusCode.INTERNAL, `group ${groupId}: state machine at ${smApplied} is behind the compacted log (${storage.firstIndex() - 1})`);
    }
    const g = new GroupNode(groupId, storage, stateMachine, smApplied, {
      self: this.opts.selfAddress,
      logger: this.log,
      clock: this.clock,
      checkQuorum: this.opts.checkQuorum,
      maxInflightMsgs: this.opts.maxInflightMsgs,
      maxEntriesPerMsg: this.opts.maxEntriesPerMsg,
      electionTicks: this.opts.electionTicks ?? 10,
      heartbeatTicks: this.opts.heartbeatTicks ?? 1,
      snapshotThreshold: this.opts.snapshotThreshold ?? 10_000,
      leaseRead: this.opts.leaseRead ?? true,
      wake: (x) => this.wake(x),
      send: (x, m) => this.sendMessage(x, m),
      compact: async (x, meta) => {
        await this.store.compact(x.id, meta);
        x.storage.compact(meta.index, meta.conf);
      },
    });
    g.onRemoved(() => {
      for (const cb of this.removedCbs) cb(groupId);
    });
    this.groups.set(groupId, g);
    this.wake(g);
    return g;
  }

  async listGroups(): Promise<string[]> {
    return this.store.listGroups();
  }

  async removeGroup(groupId: string): Promise<void> {
    const g = this.groups.get(groupId);
    if (g) {
      g.stop();
      this.groups.delete(groupId);
      this.dirty.delete(g);
      await g.idle();
    }
    await this.quiesce();
    if (g) this.groupsInFlight.delete(g);
    await this.store.removeGroup(groupId);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cancelTick?.();
    for (const g of this.groups.values()) g.stop();
    await this.quiesce();
    for (const g of this.groups.values()) await g.idle();
    this.transport.close();
    await this.store.close();
  }

  // ---- the loop ----

  private tick(): void {
    for (const g of this.groups.values()) {
      if (g.stopped) continue;
      g.core.tick();
      this.dirty.add(g);
    }
    this.schedulePump();
  }

  private wake(g: GroupNode): void {
    this.dirty.add(g);
    this.schedulePump();
  }

  private schedulePump(): void {
    if (this.pumpScheduled || this.pumping || this.closed) return;
    this.pumpScheduled = true;
    this.clock.defer(() => {
      this.pumpScheduled = false;
      void this.pump();
    });
  }

  /**
   * Group commit with asynchronous writes: collect every dirty group's Ready, hand all of
   * them to the store as one synced batch, and go on collecting while it is written (the
   * store merges what queues up during an fsync into the next batch). A leader's appends
   * leave before its own write (`sendBeforePersist`), so followers get proposals made during
   * an fsync at once instead of after it; everything else a Ready carries (acks, votes,
   * committed entries, reads) goes on only when its write and every earlier write of its
   * group are done, in the order collected. The core counts the leader's own entries towards
   * commit only when their write is done (`RaftState.localStable`), so no commit index any
   * message carries depends on a write in flight.
   *
   * A Ready that needs no fsync (no entries, no snapshot, no term/vote change) of a group
   * with nothing in flight goes on at once: its hard state (a commit index) rides in the
   * batch, but applying and answering do not wait for that write.
   */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.dirty.size > 0 && !this.closed) {
        const waiting: Array<{ g: GroupNode; rd: Ready }> = [];
        const now: Array<{ g: GroupNode; rd: Ready }> = [];
        const writes: GroupWrite[] = [];
        for (const g of [...this.dirty]) {
          this.dirty.delete(g);
          // A snapshot replaces the group's log: install it once the group's writes are done
          // (the group is woken again when they are).
          if (g.core.raft.log.pendingSnapshot && this.inFlight(g) > 0) continue;
          const c = g.collect();
          if (!c) continue;
          if (c.rd.snapshot) await this.installSnapshot(g, c.rd.snapshot.meta, (c.rd.snapshot.data as Buffer[] | undefined) ?? []);
          const mustSync = c.write.entries.length > 0 || c.write.hardStateMustSync || c.write.snapshot !== null;
          if (mustSync) g.sendBeforePersist(c.rd, c.write.hardStateMustSync);
          if (mustSync || this.inFlight(g) > 0) {
            waiting.push({ g, rd: c.rd });
            this.groupsInFlight.set(g, this.inFlight(g) + 1);
          } else {
            now.push({ g, rd: c.rd });
          }
          writes.push(c.write);
        }
        if (writes.length === 0) break;
        const written = this.store.write(writes);
        for (const { g, rd } of now) this.finish(g, rd);
        if (waiting.length === 0) {
          written.catch((e: unknown) => this.persistFailed(e));
          continue;
        }
        // The store completes writes in the order given, so these run in collection order.
        this.writesInFlight++;
        written.then(
          () => {
            this.writesInFlight--;
            for (const { g, rd } of waiting) {
              this.groupsInFlight.set(g, this.inFlight(g) - 1);
              if (this.inFlight(g) === 0) this.groupsInFlight.delete(g);
              this.finish(g, rd);
            }
            this.schedulePump();
          },
          (e: unknown) => {
            this.writesInFlight--;
            this.persistFailed(e);
          },
        );
      }
    } catch (e) {
      this.persistFailed(e);
    } finally {
      this.pumping = false;
    }
    if (this.dirty.size > 0) this.schedulePump();
  }

  /** Readies of this group handed to the store and not yet gone on. */
  private inFlight(g: GroupNode): number {
    return this.groupsInFlight.get(g) ?? 0;
  }

  /** A Ready's write (and every earlier one of its group) is done: update memory, send, apply. */
  private finish(g: GroupNode, rd: Ready): void {
    if (g.stopped) return;
    g.afterPersist(rd);
    if (g.core.hasReady()) this.dirty.add(g);
  }

  /** Until the writes handed to the store are done and nothing is being collected. */
  private async quiesce(): Promise<void> {
    while (this.pumping || this.writesInFlight > 0) await sleepOn(this.clock, 2);
  }

  private persistFailed(e: unknown): void {
    this.log.error({ err: String(e) }, 'raft persist failed; stopping all groups');
    for (const g of this.groups.values()) g.stop();
  }

  /**
   * Crash-safe snapshot install: stage the data on disk (fsync), atomically swap the log for
   * the snapshot with a "restore pending" marker, restore the state machine, clear the marker.
   * A crash in between re-runs the restore from the staged file at the next openGroup.
   */
  private async installSnapshot(g: GroupNode, meta: { index: number; term: number; conf: ConfState }, chunks: Buffer[]): Promise<void> {
    // Inside the group's state-machine turn: no apply batch or log compaction runs meanwhile.
    await g.withStateMachine(async () => {
      await this.staging.write(g.id, chunks);
      await this.store.installSnapshot(g.id, meta);
      await g.restoreSnapshot(meta, chunks);
      g.appliedConf = meta.conf;
      await g.sm.flush?.(); // durable before the marker goes: the log no longer holds it
      await this.store.finishSnapshot(g.id);
      await this.staging.remove(g.id);
    });
  }

  /** Finishes a snapshot install interrupted by a crash. */
  private async finishPendingRestore(groupId: string, sm: StateMachine): Promise<void> {
    const meta = await this.store.pendingSnapshot(groupId);
    if (!meta) return;
    if ((await sm.appliedIndex()) < meta.index) {
      this.log.warn({ group: groupId, index: meta.index }, 'finishing an interrupted snapshot restore');
      await sm.restore(meta.index, meta.term, this.staging.read(groupId));
      await sm.flush?.();
    }
    await this.store.finishSnapshot(groupId);
    await this.staging.remove(groupId);
  }

  private sendMessage(g: GroupNode, m: Message): void {
    if (m.to === this.opts.selfAddress) return;
    if (m.type === MsgType.Snap) {
      g.startSnapshotSend(m, (msg, chunks) => this.transport.sendSnapshot(msg.to, encodeMessage(g.id, msg), chunks));
      return;
    }
    this.transport.send(m.to, encodeMessage(g.id, m));
  }

  private onMessages(batch: Buffer[]): void {
    for (const b of batch) {
      const { groupId, msg } = decodeMessage(b);
      const g = this.groups.get(groupId);
      if (!g || g.stopped) continue; // not hosted (yet): the sender retries
      g.core.step(msg);
      this.dirty.add(g);
    }
    this.schedulePump();
  }

  private async onSnapshot(header: Buffer, chunks: Buffer[]): Promise<void> {
    const { groupId, msg } = decodeMessage(header);
    const g = this.groups.get(groupId);
    if (!g || g.stopped) throw new TierfsError(StatusCode.NOT_FOUND, `group ${groupId} not hosted on ${this.opts.selfAddress}`);
    msg.snapshot = { meta: msg.snapshot!.meta, data: chunks };
    g.core.step(msg);
    this.wake(g);
  }

  private onUnreachable(peer: string, batch: Buffer[]): void {
    const seen = new Set<string>();
    for (const b of batch) {
      const { groupId } = decodeMessage(b);
      if (seen.has(groupId)) continue;
      seen.add(groupId);
      const g = this.groups.get(groupId);
      if (!g || g.stopped) continue;
      g.core.step(emptyMessage(MsgType.Unreachable, this.opts.selfAddress, peer));
      this.dirty.add(g);
    }
    this.schedulePump();
  }
}
