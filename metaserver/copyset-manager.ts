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
}

export class CopysetNodeManager {
  private readonly nodes = new Map<string, CopysetNode>();
  /** Copysets being created or removed, so concurrent requests for one copyset wait for each other. */
  private readonly busy = new Map<string, Promise<unknown>>();
  private readonly logger: Logger;

  constructor(private readonly opts: CopysetNodeManagerOptions) {
    this.logger = opts.logger ?? silentLogger;
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

  private newNode(poolId: number, copysetId: number, sm: MetaStateMachine, group: CopysetNode['group']): CopysetNode {
    const node = new CopysetNode(poolId, copysetId, group, sm, { logger: this.logger, ...this.opts.node });
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
   * Creates the copyset here. When this server is not among `peers`, it joins an existing
   * group as a new member (the leader adds it and sends a snapshot).
   */
  create(poolId: number, copysetId: number, peers: string[]): Promise<CopysetNode> {
    const id = copysetGroupId(poolId, copysetId);
    return this.exclusive(id, async () => {
      const existing = this.nodes.get(id);
      if (existing) return existing;
      if (peers.length === 0) throw new TierfsError(StatusCode.INVALID_ARGUMENT, `copyset ${poolId}.${copysetId}: no peers given`);
      const sm = new MetaStateMachine(this.opts.db, poolId, copysetId, this.logger);
      await sm.clearAll(); // leftovers of an earlier incarnation on this server
      const join = !peers.includes(this.opts.selfAddress);
      const group = await this.opts.host.createGroup(id, { peers, stateMachine: sm, join });
      this.logger.info({ copyset: id, peers, join }, 'copyset created');
      return this.newNode(poolId, copysetId, sm, group);
    });
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
      await node.sm.clearAll();
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
