// A single-member, in-process stand-in for raft/'s RaftHost, for tests of the metaserver
// above the consensus layer: every proposal is applied at once with the next log index.
import type * as grpc from '@grpc/grpc-js';
import type { GroupStatus, ReplicatedGroup, ReplicationHost, StateMachine } from '../../metaserver/raft-types.js';

class SoloGroup implements ReplicatedGroup {
  private index = 0;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly id: string,
    private readonly self: string,
    private readonly sm: StateMachine,
  ) {}

  async init(): Promise<this> {
    this.index = await this.sm.appliedIndex();
    return this;
  }

  propose(data: Buffer): Promise<unknown> {
    const run = this.queue.then(async () => {
      const [result] = await this.sm.apply([{ index: ++this.index, term: 1, data }]);
      return result;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }
  async readBarrier(): Promise<void> {
    await this.queue;
  }
  isLeader(): boolean {
    return true;
  }
  leaderAddress(): string | null {
    return this.self;
  }
  status(): GroupStatus {
    return { id: this.id, term: 1, leader: this.self, commitIndex: this.index, appliedIndex: this.index, voters: [this.self], learners: [], epoch: 0 };
  }
  async addPeer(): Promise<void> {
    throw new Error('a solo group has one member');
  }
  async removePeer(): Promise<void> {
    throw new Error('a solo group has one member');
  }
  async transferLeader(): Promise<void> {}
  onLeaderChange(): void {}
}

export class SoloRaftHost implements ReplicationHost {
  private readonly groups = new Map<string, SoloGroup>();
  constructor(private readonly self: string) {}

  grpcService(): [grpc.ServiceDefinition, grpc.UntypedServiceImplementation] {
    throw new Error('a solo host serves no raft transport');
  }
  async createGroup(groupId: string, opts: { peers: string[]; stateMachine: StateMachine }): Promise<ReplicatedGroup> {
    const g = await new SoloGroup(groupId, this.self, opts.stateMachine).init();
    this.groups.set(groupId, g);
    return g;
  }
  async openGroup(groupId: string, sm: StateMachine): Promise<ReplicatedGroup> {
    return this.createGroup(groupId, { peers: [this.self], stateMachine: sm });
  }
  async listGroups(): Promise<string[]> {
    return [...this.groups.keys()];
  }
  async removeGroup(groupId: string): Promise<void> {
    this.groups.delete(groupId);
  }
  async close(): Promise<void> {}
}
