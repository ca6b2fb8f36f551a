// One simulated server: a RawNode over a simulated disk (MemoryStorage + the KV store, both
// survive crashes; only what the core held in memory is lost) and its pending client requests.
import { encodeConfChange } from '../core/confchange.js';
import { RawNode, type Ready } from '../core/rawnode.js';
import { MemoryStorage } from '../core/storage.js';
import { type ConfChange, type ConfState, type Entry, EntryType, type Message, MsgType, StateRole } from '../core/types.js';
import { type KvSnapshotData, SimKvStore } from './kv.js';
import type { Prng } from './prng.js';

export interface NodeOptions {
  electionTicks: number;
  heartbeatTicks: number;
  leaseRead: boolean;
  checkQuorum: boolean;
  compactEvery: number;
  maxInflight: number;
  /** Like the runtime: a leader sends its appends before its own write of them is done. */
  leaderSendsBeforePersist: boolean;
}

type Waiter = (ok: boolean, result: boolean | null) => void;
type ReadWaiter = (value: string | null | undefined) => void;

export class SimNode {
  readonly storage: MemoryStorage;
  readonly kv: SimKvStore;
  core: RawNode | null = null;
  private syncedHardState = { term: 0, vote: '', commit: 0 };
  private proposals = new Map<number, { term: number; done: Waiter }>();
  private reads = new Map<string, ReadWaiter>();
  private readsReady: Array<{ index: number; done: ReadWaiter }> = [];
  /** A leader's Ready whose appends went out and whose write is still "on its way to disk". */
  persisting: Ready | null = null;
  /** Bumped at each start, so a write finishing after a crash is recognised as lost. */
  incarnation = 0;
  /** Observers the simulator installs to check invariants. */
  onApply: (id: string, e: Entry) => void = () => {};

  constructor(
    readonly id: string,
    bootstrap: ConfState | null,
    private readonly opts: NodeOptions,
    private readonly rng: Prng,
  ) {
    this.storage = new MemoryStorage({ voters: [], learners: [] });
    if (bootstrap) {
      // A new group starts from a snapshot at index 1 holding its first configuration, so
      // joiners (empty log) always receive that configuration by snapshot.
      this.storage.applySnapshot({ index: 1, term: 1, conf: bootstrap });
      this.storage.setHardState({ term: 1, vote: '', commit: 1 });
      this.syncedHardState = { term: 1, vote: '', commit: 1 };
    }
    this.kv = new SimKvStore(bootstrap ?? { voters: [], learners: [] });
    if (bootstrap) {
      this.kv.applied = 1;
      this.kv.appliedTerm = 1;
    }
  }

  get up(): boolean {
    return this.core !== null;
  }

  start(): void {
    this.incarnation++;
    this.core = new RawNode({
      id: this.id,
      storage: this.storage,
      applied: this.kv.applied,
      electionTicks: this.opts.electionTicks,
      heartbeatTicks: this.opts.heartbeatTicks,
      leaseRead: this.opts.leaseRead,
      checkQuorum: this.opts.checkQuorum,
      maxInflightMsgs: this.opts.maxInflight,
      maxEntriesPerMsg: 64,
      random: () => this.rng.next(),
    });
  }

  /** kill -9: everything not on the simulated disk is gone; waiting clients never hear back. */
  crash(): void {
    if (this.core) this.storage.setHardState(this.syncedHardState);
    this.core = null;
    this.persisting = null; // the write in flight never reached the disk
    this.proposals.clear();
    this.reads.clear();
    this.readsReady = [];
  }

  isLeader(): boolean {
    return this.core?.raft.role === StateRole.Leader;
  }

  propose(data: Buffer, done: Waiter): boolean {
    if (!this.core || !this.isLeader()) return false;
    try {
      const { index, term } = this.core.propose(data);
      this.proposals.set(index, { term, done });
      return true;
    } catch {
      return false;
    }
  }

  proposeConf(cc: ConfChange): boolean {
    if (!this.core || !this.isLeader()) return false;
    try {
      this.core.proposeConfChange(encodeConfChange(cc));
      return true;
    } catch {
      return false;
    }
  }

  read(ctx: string, key: string, done: ReadWaiter): boolean {
    if (!this.core || !this.isLeader()) return false;
    try {
      this.core.readIndex(Buffer.from(ctx));
      this.reads.set(ctx, (v) => done(v === undefined ? undefined : (this.kv.data.get(key) ?? null)));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Drains every Ready: persist, send, apply, as a runtime would. A leader's appends and
   * heartbeats may leave before its write (see GroupNode.sendBeforePersist); then the Ready
   * waits in `persisting` until the simulator calls finishPersist, and no further Ready is
   * collected meanwhile (messages received meanwhile are still stepped into the core).
   */
  process(send: (m: Message) => void): void {
    const core = this.core;
    if (!core || this.persisting) return;
    while (core.hasReady()) {
      const rd = core.ready();
      if (this.opts.leaderSendsBeforePersist && this.sendsEarly(rd)) {
        const term = core.raft.term;
        const later: Message[] = [];
        for (const m of rd.messages) {
          if ((m.type === MsgType.App || m.type === MsgType.Heartbeat) && m.term === term && m.from === this.id) send(m);
          else later.push(m);
        }
        rd.messages = later;
        this.persisting = rd;
        return;
      }
      this.handleReady(rd, send);
    }
    this.releaseReads();
  }

  /** The leader's write of the Ready in `persisting` is durable now. */
  finishPersist(send: (m: Message) => void): void {
    const rd = this.persisting;
    if (!rd || !this.core) return;
    this.persisting = null;
    this.handleReady(rd, send);
    this.process(send);
    this.releaseReads();
  }

  private sendsEarly(rd: Ready): boolean {
    if (!this.isLeader() || rd.snapshot || rd.entries.length === 0) return false;
    const prev = this.storage.hardState();
    return !rd.hardState || (rd.hardState.term === prev.term && rd.hardState.vote === prev.vote);
  }

  private handleReady(rd: Ready, send: (m: Message) => void): void {
    const core = this.core!;
    const wasLeader = this.isLeader();
    {
      this.persist(rd);
      for (const m of rd.messages) send(this.fillSnapshot(m));
      if (rd.snapshot) this.restoreSnapshot(rd.snapshot.data as KvSnapshotData);
      for (const e of rd.committedEntries) this.applyEntry(e);
      for (const rs of rd.readStates) {
        const done = this.reads.get(rs.context.toString());
        if (!done) continue;
        this.reads.delete(rs.context.toString());
        this.readsReady.push({ index: rs.index, done });
      }
      core.advance(rd);
      this.maybeCompact();
      if (wasLeader && !this.isLeader()) this.failPending();
    }
  }

  private persist(rd: Ready): void {
    if (rd.snapshot) this.storage.applySnapshot(rd.snapshot.meta);
    if (rd.entries.length > 0) this.storage.append(rd.entries);
    if (rd.hardState) {
      const prev = this.storage.hardState();
      // Like the runtime: a commit-only change is written without fsync, so a crash may lose it.
      if (rd.entries.length > 0 || rd.snapshot || rd.hardState.term !== prev.term || rd.hardState.vote !== prev.vote) this.syncedHardState = rd.hardState;
      this.storage.setHardState(rd.hardState);
    }
  }

  /** The core asks for a snapshot; the state machine provides one at its applied index. */
  private fillSnapshot(m: Message): Message {
    if (m.type !== MsgType.Snap) return m;
    const data = this.kv.snapshot();
    return { ...m, snapshot: { meta: { index: data.index, term: data.term, conf: data.conf }, data } };
  }

  private restoreSnapshot(data: KvSnapshotData): void {
    this.kv.restore({ ...data, entries: data.entries.map(([k, v]) => [k, v]) });
    for (const [index, p] of this.proposals) {
      if (index <= data.index) {
        this.proposals.delete(index);
        p.done(false, null); // outcome unknown to us: the client treats it as a timeout
      }
    }
  }

  private applyEntry(e: Entry): void {
    if (e.index <= this.kv.applied) return;
    const result = this.kv.apply(e);
    this.onApply(this.id, e);
    const p = this.proposals.get(e.index);
    if (p) {
      this.proposals.delete(e.index);
      if (p.term === e.term && e.type === EntryType.Normal) p.done(true, result);
      else p.done(false, null);
    }
  }

  private releaseReads(): void {
    if (this.readsReady.length === 0) return;
    const still: typeof this.readsReady = [];
    for (const r of this.readsReady) {
      if (this.kv.applied >= r.index) r.done(null);
      else still.push(r);
    }
    this.readsReady = still;
  }

  private failPending(): void {
    for (const done of this.reads.values()) done(undefined);
    this.reads.clear();
  }

  private maybeCompact(): void {
    const first = this.storage.firstIndex();
    const applied = this.kv.applied;
    if (applied - first + 1 > this.opts.compactEvery && applied <= this.storage.lastIndex()) {
      this.storage.compact(applied, this.kv.conf);
    }
  }
}
