// The working state of one operation being applied: its own write set (dropped if the
// operation fails) and copy-on-write partition records.
import { TierfsError, StatusCode } from '../common/status.js';
import { rangeEnd, type CopysetKeys } from './keys.js';
import type { Overlay } from './overlay.js';
import type { DentryRecord, InodeRecord, PartitionRecord } from './records.js';
import { S_IFDIR, S_IFMT, S_IFREG } from './meta-client.js';

export class ApplyContext {
  private readonly touched = new Map<number, PartitionRecord>();
  private readonly removed = new Set<number>();

  constructor(
    readonly keys: CopysetKeys,
    readonly tx: Overlay,
    private readonly partitions: Map<number, PartitionRecord>,
  ) {}

  hasPartition(pid: number): boolean {
    return !this.removed.has(pid) && (this.touched.has(pid) || this.partitions.has(pid));
  }

  /** The partitions of filesystem `fsId` in this copyset (read only: none becomes touched). */
  partitionsOf(fsId: number): number[] {
    const ids = new Set([...this.partitions.keys(), ...this.touched.keys()]);
    return [...ids].filter((pid) => this.hasPartition(pid) && (this.touched.get(pid) ?? this.partitions.get(pid))!.fsId === fsId);
  }

  partition(pid: number): PartitionRecord {
    if (this.removed.has(pid)) throw new TierfsError(StatusCode.NOT_FOUND, `partition ${pid} is not in copyset ${this.keys.copysetId}`);
    let p = this.touched.get(pid);
    if (!p) {
      const base = this.partitions.get(pid);
      if (!base) throw new TierfsError(StatusCode.NOT_FOUND, `partition ${pid} is not in copyset ${this.keys.poolId}.${this.keys.copysetId}`);
      p = { ...base };
      this.touched.set(pid, p);
    }
    return p;
  }

  addPartition(p: PartitionRecord): void {
    this.removed.delete(p.partitionId);
    this.touched.set(p.partitionId, p);
  }

  removePartition(pid: number): void {
    this.touched.delete(pid);
    this.removed.add(pid);
  }

  /** Partition `pid` after checking it holds `ino`. */
  partitionOf(pid: number, ino: number): PartitionRecord {
    const p = this.partition(pid);
    if (ino < p.start || ino > p.end) {
      throw new TierfsError(StatusCode.NOT_FOUND, `inode ${ino} is outside partition ${pid} [${p.start}, ${p.end}]`);
    }
    return p;
  }

  /**
   * The partition of this copyset, of the same filesystem as `pid`, whose range holds `ino`;
   * undefined when that inode lives in another copyset. Ranges of one filesystem never
   * overlap, so the answer is the same on every replica whatever the map's order.
   */
  localPartitionOf(pid: number, ino: number): number | undefined {
    const fsId = this.partition(pid).fsId;
    // Read without copying (a partition record copied here would be rewritten by finish()),
    // and without building a set of ids: this runs for every name an entry touches.
    const holds = (id: number, p: PartitionRecord) => !this.removed.has(id) && p.fsId === fsId && ino >= p.start && ino <= p.end;
    for (const [id, p] of this.touched) if (holds(id, p)) return id;
    for (const [id, p] of this.partitions) if (!this.touched.has(id) && holds(id, p)) return id;
    return undefined;
  }

  /** No names in directory `dir` (whose dentries live in partition `pid`), none being renamed into it either. */
  async isEmptyDir(pid: number, dir: number): Promise<boolean> {
    const names = this.keys.dentryPrefix(pid, dir);
    const locks = this.keys.lockPrefix(pid, dir);
    return (await this.tx.keys(names, rangeEnd(names), 1)).length === 0 && (await this.tx.keys(locks, rangeEnd(locks), 1)).length === 0;
  }

  async maybeInode(pid: number, ino: number): Promise<InodeRecord | undefined> {
    this.partitionOf(pid, ino);
    return this.tx.getJson<InodeRecord>(this.keys.inode(pid, ino));
  }

  async inode(pid: number, ino: number): Promise<InodeRecord> {
    const inode = await this.maybeInode(pid, ino);
    if (!inode) throw new TierfsError(StatusCode.NOT_FOUND, `inode ${ino} not found`);
    return inode;
  }

  /** Stores the inode, keeping the partition's byte usage in step with regular files' sizes. */
  putInode(pid: number, inode: InodeRecord, before: InodeRecord | undefined): void {
    const p = this.partition(pid);
    const bytes = (i: InodeRecord | undefined) => (i && (i.mode & S_IFMT) === S_IFREG ? i.size : 0);
    p.usedBytes = Math.max(0, p.usedBytes + bytes(inode) - bytes(before));
    this.tx.putJson(this.keys.inode(pid, inode.ino), inode);
  }

  async dentry(pid: number, parent: number, name: string): Promise<DentryRecord | undefined> {
    this.partitionOf(pid, parent);
    return this.tx.getJson<DentryRecord>(this.keys.dentry(pid, parent, name));
  }

  /** TX_CONFLICT when a rename transaction other than `txId` holds the name. */
  async checkUnlocked(pid: number, parent: number, name: string, txId = ''): Promise<void> {
    const holder = await this.tx.get(this.keys.lock(pid, parent, name));
    if (holder !== undefined && holder !== txId) {
      throw new TierfsError(StatusCode.TX_CONFLICT, `name ${JSON.stringify(name)} in ${parent} is held by rename ${holder}`);
    }
  }

  /** Parent directory bookkeeping for a dentry change: times, nlink for subdirectories, and the count of its name changes. */
  async touchParent(pid: number, parent: number, now: number, nlinkDelta: number): Promise<void> {
    const before = await this.inode(pid, parent);
    if ((before.mode & S_IFMT) !== S_IFDIR) throw new TierfsError(StatusCode.NOT_DIR, `inode ${parent} is not a directory`);
    const after = { ...before, mtimeMs: now, ctimeMs: now, nlink: Math.max(0, before.nlink + nlinkDelta), entriesVersion: (before.entriesVersion ?? 0) + 1 };
    this.putInode(pid, after, before);
  }

  /** Writes the touched partition records and publishes them; call only when the op succeeded. */
  finish(): void {
    for (const pid of this.removed) {
      this.partitions.delete(pid);
      this.tx.del(this.keys.partition(pid));
    }
    for (const [pid, p] of this.touched) {
      this.partitions.set(pid, p);
      this.tx.putJson(this.keys.partition(pid), p);
    }
  }
}

export const isDirType = (mode: number): boolean => (mode & S_IFMT) === S_IFDIR;
