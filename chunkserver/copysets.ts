// The chunk copysets this chunkserver holds: created when the MDS (or a leader adding a
// replica) asks, reopened on restart, removed with their chunk files (back to the pool)
// when the group drops this server.
import { join } from 'node:path';
import type { Logger } from '../common/log.js';
import { silentLogger } from '../common/log.js';
import { StatusCode, TierfsError } from '../common/status.js';
import type { CopysetHolder, HeldCopyset } from '../metaserver/copyset-admin.js';
import type { ReplicatedGroup, ReplicationHost } from '../metaserver/raft-types.js';
import type { ChunkFilePool } from './chunk-pool.js';
import { ChunkStateMachine } from './chunk-state.js';

export const chunkGroupId = (poolId: number, copysetId: number): string => `chunk-${poolId}-${copysetId}`;

function parseGroupId(id: string): { poolId: number; copysetId: number } | null {
  const m = /^chunk-(\d+)-(\d+)$/.exec(id);
  return m ? { poolId: Number(m[1]), copysetId: Number(m[2]) } : null;
}

export class ChunkCopyset implements HeldCopyset {
  constructor(
    readonly poolId: number,
    readonly copysetId: number,
    readonly group: ReplicatedGroup,
    readonly sm: ChunkStateMachine,
    /** Peers named at creation (a joiner knows no configuration before its snapshot). */
    readonly initialPeers: string[] = [],
  ) {}

  get name(): string {
    return `${this.poolId}.${this.copysetId}`;
  }
}

export interface ChunkCopysetManagerOptions {
  host: ReplicationHost;
  pool: ChunkFilePool;
  /** Where the copysets' chunk directories live (same filesystem as the pool: take is a rename). */
  dir: string;
  selfAddress: string;
  logger?: Logger;
  /** The members another server has for a copyset (null: not held or unreachable). */
  membersOn?: (address: string, poolId: number, copysetId: number) => Promise<string[] | null>;
}

export class ChunkCopysetManager implements CopysetHolder {
  private readonly copysets = new Map<string, ChunkCopyset>();
  private readonly busy = new Map<string, Promise<unknown>>();
  private readonly log: Logger;

  constructor(private readonly opts: ChunkCopysetManagerOptions) {
    this.log = opts.logger ?? silentLogger;
    opts.host.onGroupRemoved?.((groupId) => {
      const ref = parseGroupId(groupId);
      if (!ref) return;
      // Let the removing entry finish applying before the group is stopped.
      setTimeout(() => {
        this.remove(ref.poolId, ref.copysetId).catch((err: unknown) => this.log.warn({ err: String(err), groupId }, 'removing a dropped copyset failed'));
      }, 100).unref();
    });
  }

  get selfAddress(): string {
    return this.opts.selfAddress;
  }

  private exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.busy.get(key) ?? Promise.resolve()).then(fn, fn);
    const settled = run.catch(() => undefined);
    this.busy.set(key, settled);
    void settled.then(() => {
      if (this.busy.get(key) === settled) this.busy.delete(key);
    });
    return run;
  }

  private stateMachine(poolId: number, copysetId: number): ChunkStateMachine {
    return new ChunkStateMachine(join(this.opts.dir, `${poolId}-${copysetId}`), this.opts.pool);
  }

  async loadAll(): Promise<number> {
    for (const id of await this.opts.host.listGroups()) {
      const ref = parseGroupId(id);
      if (!ref) continue;
      const sm = this.stateMachine(ref.poolId, ref.copysetId).load();
      const group = await this.opts.host.openGroup(id, sm);
      this.copysets.set(id, new ChunkCopyset(ref.poolId, ref.copysetId, group, sm));
    }
    this.log.info({ copysets: this.copysets.size }, 'chunk copysets loaded');
    return this.copysets.size;
  }

  /**
   * Creates the copyset here: a new group with `peers`, or a joining member (the leader adds
   * it and sends a snapshot) when this server is not among `peers` or a running member's
   * configuration does not list it yet.
   */
  create(poolId: number, copysetId: number, peers: string[]): Promise<ChunkCopyset> {
    const id = chunkGroupId(poolId, copysetId);
    return this.exclusive(id, async () => {
      const existing = this.copysets.get(id);
      if (existing) return existing;
      if (peers.length === 0) throw new TierfsError(StatusCode.INVALID_ARGUMENT, `copyset ${poolId}.${copysetId}: no peers given`);
      const sm = this.stateMachine(poolId, copysetId);
      await sm.destroy(); // leftovers of an earlier incarnation on this server
      sm.load();
      const join = !peers.includes(this.selfAddress) || (await this.beingAdded(poolId, copysetId, peers));
      const group = await this.opts.host.createGroup(id, { peers, stateMachine: sm, join });
      const cs = new ChunkCopyset(poolId, copysetId, group, sm, peers);
      this.copysets.set(id, cs);
      this.log.info({ copyset: id, peers, join }, 'chunk copyset created');
      return cs;
    });
  }

  private async beingAdded(poolId: number, copysetId: number, peers: string[]): Promise<boolean> {
    const probe = this.opts.membersOn;
    if (!probe) return false;
    const others = peers.filter((p) => p !== this.selfAddress);
    const answers = await Promise.all(others.map((p) => probe(p, poolId, copysetId)));
    return answers.some((m) => m !== null && m.length > 0 && !m.includes(this.selfAddress));
  }

  async removeIfNotMember(poolId: number, copysetId: number): Promise<boolean> {
    const cs = this.copysets.get(chunkGroupId(poolId, copysetId));
    if (!cs) return false;
    const probe = this.opts.membersOn;
    if (probe) {
      const st = cs.group.status();
      for (const p of new Set([...cs.initialPeers, ...st.voters, ...st.learners])) {
        if (p === this.selfAddress) continue;
        if ((await probe(p, poolId, copysetId))?.includes(this.selfAddress)) return false;
      }
    }
    await this.remove(poolId, copysetId);
    return true;
  }

  get(poolId: number, copysetId: number): ChunkCopyset {
    const cs = this.copysets.get(chunkGroupId(poolId, copysetId));
    if (!cs) throw new TierfsError(StatusCode.NOT_FOUND, `copyset ${poolId}.${copysetId} is not on this chunkserver`);
    return cs;
  }

  has(poolId: number, copysetId: number): boolean {
    return this.copysets.has(chunkGroupId(poolId, copysetId));
  }

  list(): ChunkCopyset[] {
    return [...this.copysets.values()];
  }

  remove(poolId: number, copysetId: number): Promise<void> {
    const id = chunkGroupId(poolId, copysetId);
    return this.exclusive(id, async () => {
      const cs = this.copysets.get(id);
      if (!cs) return;
      this.copysets.delete(id);
      await this.opts.host.removeGroup(id);
      await cs.sm.destroy();
      this.log.info({ copyset: id }, 'chunk copyset removed');
    });
  }

  /** Removes copysets whose configuration no longer lists this server. */
  async dropRemovedCopysets(): Promise<void> {
    for (const cs of this.list()) {
      const st = cs.group.status();
      const members = [...st.voters, ...st.learners];
      if (st.epoch > 0 && members.length > 0 && !members.includes(this.selfAddress)) await this.remove(cs.poolId, cs.copysetId);
    }
  }

  async close(): Promise<void> {
    for (const cs of this.copysets.values()) await cs.sm.close();
  }
}
