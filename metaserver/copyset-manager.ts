// The copysets this metaserver holds: created when the MDS (or an adding leader) asks,
// all reopened on restart, and removed with their data when the group drops this server.
import type { Logger } from '../common/log.js';
import { silentLogger } from '../common/log.js';
import { StatusCode, TierfsError } from '../common/status.js';
import { CopysetNode, type CopysetNodeOptions } from './copyset-node.js';
import { MetaStateMachine } from './state-machine.js';
import type { ReplicationHost } from './raft-types.js';
import type { MetaDb } from './overlay.js';

export function copysetGroupId(poolId: number, copysetId: number): string {
  return `meta-${poolId}-${copysetId}`;
}

function parseGroupId(id: string): { poolId: number; copysetId: number } | null {
  const m = /^meta-(\d+)-(\d+)$/.exec(id);
  return m ? { poolId: Number(m[1]), copysetId: Number(m[2]) } : null;
}

export interface CopysetNodeManagerOptions {
  host: ReplicationHost;
  db: MetaDb;
  selfAddress: string;
  logger?: Logger;
  node?: CopysetNodeOptions;
  /**
   * The members (voters and learners) another server has for a copyset (null: not held or
   * unreachable). Tells a join from a creation, and a stale removal order from a real one.
   */
  membersOn?: (address: string, poolId: number, copysetId: number) => Promise<string[] | null>;
}

export class CopysetNodeManager {
  private readonly nodes = new Map<string, CopysetNode>();
  /** Copysets being created or removed, so concurrent requests for one copyset wait for each other. */
  private readonly busy = new Map<string, Promise<unknown>>();
  private readonly logger: Logger;

  constructor(private readonly opts: CopysetNodeManagerOptions) {
    this.logger = opts.logger ?? silentLogger;
    opts.host.onGroupRemoved?.((groupId) => {
      const ref = parseGroupId(groupId);
      if (!ref) return;
      // Let the removing entry finish applying before the group is stopped.
      setTimeout(() => {
        this.remove(ref.poolId, ref.copysetId).catch((err: unknown) => this.logger.warn({ err, groupId }, 'removing a dropped copyset failed'));
      }, 100).unref();
    });
  }

  get selfAddress(): string {
    return this.opts.selfAddress;
  }

  private exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.busy.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const settled = run.catch(() => undefined);
    this.busy.set(key, settled);
    void settled.then(() => {
      if (this.busy.get(key) === settled) this.busy.delete(key);
    });
    return run;
  }

  private newNode(poolId: number, copysetId: number, sm: MetaStateMachine, group: CopysetNode['group'], peers: string[] = []): CopysetNode {
    const node = new CopysetNode(poolId, copysetId, group, sm, { logger: this.logger, ...this.opts.node });
    node.initialPeers = peers;
    this.nodes.set(copysetGroupId(poolId, copysetId), node);
    node.start();
    return node;
  }

  /** Reopens every copyset group the raft host knows about. */
  async loadAll(): Promise<number> {
    for (const id of await this.opts.host.listGroups()) {
      const ref = parseGroupId(id);
      if (!ref) continue;
      const sm = await new MetaStateMachine(this.opts.db, ref.poolId, ref.copysetId, this.logger).load();
      const group = await this.opts.host.openGroup(id, sm);
      this.newNode(ref.poolId, ref.copysetId, sm, group);
    }
    this.logger.info({ copysets: this.nodes.size }, 'copysets loaded');
    return this.nodes.size;
  }

  /**
   * Creates the copyset here. It joins an existing group as a new member (the leader adds
   * it and sends a snapshot) when this server is not among `peers`, or when a running
   * member's configuration does not list this server yet (the MDS adding a replica names
   * the configuration after the change); otherwise it starts a new group with `peers`.
   */
  create(poolId: number, copysetId: number, peers: string[]): Promise<CopysetNode> {
    const id = copysetGroupId(poolId, copysetId);
    return this.exclusive(id, async () => {
      const existing = this.nodes.get(id);
      if (existing) return existing;
      if (peers.length === 0) throw new TierfsError(StatusCode.INVALID_ARGUMENT, `copyset ${poolId}.${copysetId}: no peers given`);
      const sm = new MetaStateMachine(this.opts.db, poolId, copysetId, this.logger);
      await sm.clearAll(); // leftovers of an earlier incarnation on this server
      const join = !peers.includes(this.opts.selfAddress) || (await this.beingAdded(poolId, copysetId, peers));
      const group = await this.opts.host.createGroup(id, { peers, stateMachine: sm, join });
      this.logger.info({ copyset: id, peers, join }, 'copyset created');
      return this.newNode(poolId, copysetId, sm, group, peers);
    });
  }

  private async beingAdded(poolId: number, copysetId: number, peers: string[]): Promise<boolean> {
    const probe = this.opts.membersOn;
    if (!probe) return false;
    const others = peers.filter((p) => p !== this.opts.selfAddress);
    // Peers still starting may not answer at first; a few rounds give them time.
    for (let round = 0; round < 3; round++) {
      const answers = await Promise.all(others.map((p) => probe(p, poolId, copysetId)));
      if (answers.some((m) => m !== null && m.length > 0 && !m.includes(this.opts.selfAddress))) return true;
      if (answers.filter((m) => m !== null).length * 2 >= others.length) return false;
      await new Promise((r) => setTimeout(r, 300));
    }
    return false;
  }

  /**
   * Removes the copyset unless a running member still lists this server (the MDS may order
   * a removal from a stale view, e.g. while this server is being added as a learner).
   */
  async removeIfNotMember(poolId: number, copysetId: number): Promise<boolean> {
    const node = this.nodes.get(copysetGroupId(poolId, copysetId));
    if (!node) return false;
    const probe = this.opts.membersOn;
    if (probe) {
      const st = node.group.status();
      const others = [...new Set([...node.initialPeers, ...st.voters, ...st.learners])].filter((p) => p !== this.opts.selfAddress);
      for (const p of others) {
        const members = await probe(p, poolId, copysetId);
        if (members?.includes(this.opts.selfAddress)) {
          this.logger.warn({ copyset: node.name, member: p }, 'not removing the copyset: a running member still lists this server');
          return false;
        }
      }
    }
    await this.remove(poolId, copysetId);
    return true;
  }

  get(poolId: number, copysetId: number): CopysetNode {
    const node = this.nodes.get(copysetGroupId(poolId, copysetId));
    if (!node) throw new TierfsError(StatusCode.NOT_FOUND, `copyset ${poolId}.${copysetId} is not on this metaserver`);
    return node;
  }

  has(poolId: number, copysetId: number): boolean {
    return this.nodes.has(copysetGroupId(poolId, copysetId));
  }

  list(): CopysetNode[] {
    return [...this.nodes.values()];
  }

  /** Stops the copyset here and deletes its log and data. */
  remove(poolId: number, copysetId: number): Promise<void> {
    const id = copysetGroupId(poolId, copysetId);
    return this.exclusive(id, async () => {
      const node = this.nodes.get(id);
      if (!node) return;
      node.stop();
      this.nodes.delete(id);
      await this.opts.host.removeGroup(id);
      await node.sm.destroy();
      this.logger.info({ copyset: id }, 'copyset removed');
    });
  }

  /** Removes copysets whose configuration no longer lists this server. */
  async dropRemovedCopysets(): Promise<void> {
    for (const node of this.list()) {
      const st = node.group.status();
      const members = [...st.voters, ...st.learners];
      if (st.epoch > 0 && members.length > 0 && !members.includes(this.opts.selfAddress)) {
        await this.remove(node.poolId, node.copysetId);
      }
    }
  }

  close(): void {
    for (const node of this.nodes.values()) node.stop();
  }
}
