// Health checking and scheduling. Metaservers that stop heartbeating become UNSTABLE, then
// OFFLINE. The scheduler then creates operators: recover a copyset that lost a replica
// (CHANGE_PEER: add a healthy metaserver in another zone, remove the offline one), and
// balance copyset counts and leaders. One operator at a time per copyset and per server,
// each with a timeout; operators travel to the copyset leader in heartbeat replies.
import type { Logger } from '../common/log.js';
import type { CopysetConfigChange } from '../proto/gen/tierfs/heartbeat/CopysetConfigChange.js';
import type { ConfigChangeType } from '../proto/gen/tierfs/heartbeat/ConfigChangeType.js';
import type { MdsConfig } from './config.js';
import type { CopysetRecord, MetaServerRecord } from './records.js';
import { copysetKey, type MdsState } from './state.js';
import type { Topology } from './topology.js';

export type OperatorKind = 'CHANGE_PEER' | 'TRANSFER_LEADER';

export interface Operator {
  poolId: number;
  copysetId: number;
  kind: OperatorKind;
  /** The peer added (CHANGE_PEER) or the new leader (TRANSFER_LEADER). */
  peer: string;
  /** The peer removed (CHANGE_PEER). */
  oldPeer: string;
  epoch: number;
  reason: 'recover' | 'balance-copysets' | 'balance-leaders';
  createdMs: number;
  deadlineMs: number;
}

export class Scheduler {
  /** copysetKey -> operator in flight. */
  readonly operators = new Map<string, Operator>();

  constructor(
    private readonly state: MdsState,
    private readonly topology: Topology,
    private readonly config: MdsConfig,
    private readonly log: Logger,
  ) {}

  /** Marks metaservers UNSTABLE / OFFLINE from the time since their last heartbeat. */
  checkHealth(now = Date.now()): void {
    const { unstableAfterMs, offlineAfterMs } = this.config.health;
    for (const [id, rt] of this.state.metaserverRuntime) {
      const silent = now - rt.lastHeartbeatMs;
      const next = silent > offlineAfterMs ? 'OFFLINE' : silent > unstableAfterMs ? 'UNSTABLE' : 'ONLINE';
      if (next !== rt.state) {
        this.log.warn({ id, address: this.state.metaservers.get(id)?.address, from: rt.state, to: next, silentMs: silent }, 'metaserver state changed');
        rt.state = next;
      }
    }
  }

  /** May `address` receive a replica or leadership now? (MdsState.isHealthyTarget) */
  private healthy(address: string, now: number): boolean {
    return this.state.isHealthyTarget(address, this.config.scheduler.targetFreshMs, now);
  }

  private busy(address: string): boolean {
    for (const op of this.operators.values()) if (op.peer === address || op.oldPeer === address) return true;
    return false;
  }

  private isDone(key: string, op: Operator): boolean {
    const cs = this.state.copysets.get(key);
    const leader = this.state.copysetRuntime.get(key)?.leader ?? '';
    return !cs
      || (op.kind === 'CHANGE_PEER' && cs.peers.includes(op.peer) && !cs.peers.includes(op.oldPeer))
      || (op.kind === 'TRANSFER_LEADER' && leader === op.peer);
  }

  /** Forgets finished and timed-out operators, and those whose target stopped answering. */
  private reapOperators(now: number): void {
    for (const [key, op] of this.operators) {
      if (this.isDone(key, op)) {
        this.log.info({ copyset: key, op: describe(op) }, 'operator finished');
        this.operators.delete(key);
      } else if (!this.healthy(op.peer, now)) {
        this.log.warn({ copyset: key, op: describe(op) }, 'operator dropped: its target missed heartbeats or is reported unreachable');
        this.operators.delete(key);
      } else if (now > op.deadlineMs) {
        this.log.warn({ copyset: key, op: describe(op) }, 'operator timed out');
        this.operators.delete(key);
      }
    }
  }

  /** One scheduling round: recovery first; balancing only while nothing needs recovery. */
  schedule(now = Date.now()): void {
    this.reapOperators(now);
    let recovering = false;
    for (const cs of this.state.copysets.values()) {
      const dead = cs.peers.filter((p) => this.state.stateOf(p) === 'OFFLINE');
      if (dead.length === 0) continue;
      recovering = true;
      const key = copysetKey(cs.poolId, cs.copysetId);
      if (this.operators.has(key)) continue;
      const alive = cs.peers.length - dead.length;
      if (alive * 2 <= cs.peers.length) {
        this.log.error({ copyset: key, dead }, 'copyset lost its quorum; cannot recover automatically');
        continue;
      }
      const old = dead[0]!;
      const remaining = cs.peers.filter((p) => p !== old).map((p) => this.state.metaserverByAddress(p)).filter((m): m is MetaServerRecord => !!m);
      const candidates = this.candidates(cs).filter((m) => !this.busy(m.address) && this.healthy(m.address, now));
      const [target] = this.topology.choosePeers(candidates, 1, remaining);
      if (!target) {
        this.log.warn({ copyset: key, dead: old }, 'no healthy metaserver available to replace a lost replica');
        continue;
      }
      this.start(cs, 'CHANGE_PEER', target.address, old, 'recover', now);
    }
    if (recovering || !this.config.scheduler.balanceCopysets && !this.config.scheduler.balanceLeaders) return;
    // A member of some copyset that missed heartbeats may be dead: moving leaders or replicas
    // now would only aim at it or load the survivors; wait until it is back or replaced.
    for (const cs of this.state.copysets.values()) if (!cs.peers.every((p) => this.healthy(p, now))) return;
    if (this.config.scheduler.balanceCopysets) this.balanceCopysets(now);
    if (this.config.scheduler.balanceLeaders) this.balanceLeaders(now);
  }

  /** Online metaservers of the copyset's pool that are not already its members. */
  private candidates(cs: CopysetRecord): MetaServerRecord[] {
    const poolName = [...this.state.pools.entries()].find(([, id]) => id === cs.poolId)?.[0];
    return this.topology.onlineMetaservers(poolName).filter((m) => !cs.peers.includes(m.address));
  }

  /** Balancing compares servers of one pool: metaservers and chunkservers never trade copysets. */
  private pools(): string[] {
    return [...new Set(this.topology.onlineMetaservers().map((m) => m.pool))];
  }

  private balanceCopysets(now: number): void {
    for (const pool of this.pools()) this.balanceCopysetsIn(pool, now);
  }

  private balanceLeaders(now: number): void {
    for (const pool of this.pools()) this.balanceLeadersIn(pool, now);
  }

  private balanceCopysetsIn(pool: string, now: number): void {
    const online = this.topology.onlineMetaservers(pool).filter((m) => this.healthy(m.address, now));
    if (online.length < 2) return;
    const count = (m: MetaServerRecord) => this.state.copysetsOn(m.address).length;
    const sorted = [...online].sort((a, b) => count(b) - count(a));
    const most = sorted[0]!;
    const least = sorted[sorted.length - 1]!;
    if (count(most) - count(least) <= 1 || this.busy(most.address) || this.busy(least.address)) return;
    for (const cs of this.state.copysetsOn(most.address)) {
      const key = copysetKey(cs.poolId, cs.copysetId);
      if (this.operators.has(key) || cs.peers.includes(least.address)) continue;
      if (!cs.peers.every((p) => this.healthy(p, now))) continue;
      // Keep replicas in distinct zones: the newcomer's zone must be free among the others.
      const others = cs.peers.filter((p) => p !== most.address).map((p) => this.state.metaserverByAddress(p)?.zone);
      if (others.includes(least.zone) && least.zone !== most.zone) continue;
      this.start(cs, 'CHANGE_PEER', least.address, most.address, 'balance-copysets', now);
      return;
    }
  }

  private balanceLeadersIn(pool: string, now: number): void {
    const online = this.topology.onlineMetaservers(pool).filter((m) => this.healthy(m.address, now));
    if (online.length < 2) return;
    const leads = new Map<string, string[]>();
    for (const m of online) leads.set(m.address, []);
    for (const [key, rt] of this.state.copysetRuntime) if (rt.leader && leads.has(rt.leader)) leads.get(rt.leader)!.push(key);
    const sorted = [...leads.entries()].sort((a, b) => b[1].length - a[1].length);
    const [most, led] = sorted[0]!;
    if (this.busy(most)) return;
    for (const key of led) {
      const cs = this.state.copysets.get(key);
      if (!cs || this.operators.has(key)) continue;
      const target = cs.peers
        .filter((p) => p !== most && this.healthy(p, now) && !this.busy(p))
        .sort((a, b) => (leads.get(a)?.length ?? 0) - (leads.get(b)?.length ?? 0))[0];
      if (!target || led.length - (leads.get(target)?.length ?? 0) <= 1) continue;
      this.start(cs, 'TRANSFER_LEADER', target, '', 'balance-leaders', now);
      return;
    }
  }

  private start(cs: CopysetRecord, kind: OperatorKind, peer: string, oldPeer: string, reason: Operator['reason'], now: number): void {
    const key = copysetKey(cs.poolId, cs.copysetId);
    const op: Operator = { poolId: cs.poolId, copysetId: cs.copysetId, kind, peer, oldPeer, epoch: cs.epoch, reason, createdMs: now, deadlineMs: now + this.config.scheduler.operatorTimeoutMs };
    this.operators.set(key, op);
    // The copyset leader creates the copyset on the newcomer (as a joining member) itself.
    this.log.info({ copyset: key, op: describe(op) }, 'operator started');
  }

  /** True while `address` is being added to the copyset (it must not be told to drop it). */
  isJoining(key: string, address: string): boolean {
    const op = this.operators.get(key);
    return !!op && op.kind === 'CHANGE_PEER' && op.peer === address;
  }

  /** Changes to hand to a metaserver in its heartbeat reply: operators of copysets it leads. */
  changesFor(address: string): CopysetConfigChange[] {
    const out: CopysetConfigChange[] = [];
    for (const [key, op] of this.operators) {
      if (this.state.copysetRuntime.get(key)?.leader !== address || this.isDone(key, op)) continue;
      // Half done (peer added, old one not yet removed, e.g. after a leader change): the
      // remaining step is based on the configuration that now includes the newcomer.
      const cs = this.state.copysets.get(key);
      const epoch = op.kind === 'CHANGE_PEER' && cs && cs.peers.includes(op.peer) ? cs.epoch : op.epoch;
      out.push({ copyset_id: op.copysetId, pool_id: op.poolId, type: op.kind as ConfigChangeType, peer: op.peer, old_peer: op.oldPeer, epoch });
    }
    return out;
  }

  describeAll(): string[] {
    return [...this.operators.values()].map(describe);
  }
}

export function describe(op: Operator): string {
  const what = op.kind === 'CHANGE_PEER' ? `${op.kind} +${op.peer} -${op.oldPeer}` : `${op.kind} -> ${op.peer}`;
  return `copyset ${op.poolId}/${op.copysetId}: ${what} (${op.reason}, epoch ${op.epoch})`;
}
