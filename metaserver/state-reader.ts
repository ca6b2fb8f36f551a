// Reads of a copyset's state, served by the leader after a read barrier (under its lease,
// no Raft round). Single records come through the state machine's RecordStore cache.
import { StatusCode, TierfsError } from '../common/status.js';
import { parseHex, rangeEnd } from './keys.js';
import type { MetaStateMachine } from './state-machine.js';
import type { DentryRecord, InodeRecord, PartitionRecord, TrashRecord, TxStateRecord } from './records.js';
import type { Dentry, SliceRecord } from './meta-client.js';

export class MetaReader {
  constructor(private readonly sm: MetaStateMachine) {}

  partition(pid: number): PartitionRecord {
    const p = this.sm.partitions.get(pid);
    if (!p) throw new TierfsError(StatusCode.NOT_FOUND, `partition ${pid} is not in copyset ${this.sm.keys.poolId}.${this.sm.keys.copysetId}`);
    return p;
  }

  private check(pid: number, ino: number): void {
    const p = this.partition(pid);
    if (ino < p.start || ino > p.end) throw new TierfsError(StatusCode.NOT_FOUND, `inode ${ino} is outside partition ${pid}`);
  }

  async inode(pid: number, ino: number): Promise<InodeRecord> {
    this.check(pid, ino);
    const raw = await this.sm.store.get(this.sm.keys.inode(pid, ino));
    if (raw === undefined) throw new TierfsError(StatusCode.NOT_FOUND, `inode ${ino} not found`);
    return JSON.parse(raw) as InodeRecord;
  }

  async maybeInode(pid: number, ino: number): Promise<InodeRecord | undefined> {
    this.check(pid, ino);
    const raw = await this.sm.store.get(this.sm.keys.inode(pid, ino));
    return raw === undefined ? undefined : (JSON.parse(raw) as InodeRecord);
  }

  /** The inode if a partition of this copyset of the same filesystem as `pid` holds it, else undefined. */
  async inodeIfLocal(pid: number, ino: number): Promise<InodeRecord | undefined> {
    const fsId = this.partition(pid).fsId;
    for (const p of this.sm.partitions.values()) {
      if (p.fsId !== fsId || ino < p.start || ino > p.end) continue;
      const raw = await this.sm.store.get(this.sm.keys.inode(p.partitionId, ino));
      return raw === undefined ? undefined : (JSON.parse(raw) as InodeRecord);
    }
    return undefined;
  }

  /** TX_CONFLICT while a rename holds the name, so nobody sees it half-moved. */
  async dentry(pid: number, parent: number, name: string): Promise<Dentry> {
    this.check(pid, parent);
    const keys = this.sm.keys;
    const [lock, raw] = await Promise.all([this.sm.store.get(keys.lock(pid, parent, name)), this.sm.store.get(keys.dentry(pid, parent, name))]);
    if (lock !== undefined) throw new TierfsError(StatusCode.TX_CONFLICT, `${JSON.stringify(name)} in ${parent} is being renamed`);
    if (raw === undefined) throw new TierfsError(StatusCode.NOT_FOUND, `${JSON.stringify(name)} not found in ${parent}`);
    const d = JSON.parse(raw) as DentryRecord;
    return { parent, name, ino: d.ino, type: d.type };
  }

  async listDentries(pid: number, parent: number, last: string, count: number): Promise<Dentry[]> {
    this.check(pid, parent);
    const prefix = this.sm.keys.dentryPrefix(pid, parent);
    const out: Dentry[] = [];
    const range = last ? { gt: prefix + last, lt: rangeEnd(prefix) } : { gte: prefix, lt: rangeEnd(prefix) };
    await this.sm.store.settled(); // range scans read level: every applied batch must be in it
    for await (const [key, value] of this.sm.db.iterator({ ...range, limit: count > 0 ? count : -1 })) {
      const d = JSON.parse(value) as DentryRecord;
      out.push({ parent, name: key.slice(prefix.length), ino: d.ino, type: d.type });
    }
    return out;
  }

  async slices(pid: number, ino: number): Promise<Map<number, SliceRecord[]>> {
    await this.inode(pid, ino);
    const prefix = this.sm.keys.slicesPrefix(pid, ino);
    const out = new Map<number, SliceRecord[]>();
    await this.sm.store.settled();
    for await (const [key, value] of this.sm.db.iterator({ gte: prefix, lt: rangeEnd(prefix) })) {
      out.set(parseHex(key.slice(prefix.length)), JSON.parse(value) as SliceRecord[]);
    }
    return out;
  }

  async trash(limit: number): Promise<Array<{ pid: number; record: TrashRecord }>> {
    const out: Array<{ pid: number; record: TrashRecord }> = [];
    await this.sm.store.settled();
    for (const pid of this.sm.partitions.keys()) {
      const prefix = this.sm.keys.trashPrefix(pid);
      for await (const value of this.sm.db.values({ gte: prefix, lt: rangeEnd(prefix), limit: limit - out.length })) {
        out.push({ pid, record: JSON.parse(value) as TrashRecord });
      }
      if (out.length >= limit) break;
    }
    return out;
  }

  /** Rename transactions prepared at this copyset (as destination) and not finished. */
  async preparedTxs(): Promise<TxStateRecord[]> {
    const prefix = this.sm.keys.txPrefix();
    const out: TxStateRecord[] = [];
    await this.sm.store.settled();
    for await (const [key, value] of this.sm.db.iterator({ gte: prefix, lt: rangeEnd(prefix) })) {
      if (!key.endsWith('/dst')) continue;
      const rec = JSON.parse(value) as TxStateRecord;
      if (rec.state === 'prepared') out.push(rec);
    }
    return out;
  }
}
