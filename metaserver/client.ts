// RemoteMetaClient: the MetaClient of one filesystem over gRPC. Routes by inode id to the
// partition (a dentry lives in its parent's partition), places a new inode in its parent's
// partition (directories made in the root round robin over writable partitions), follows
// copyset leaders and retries with request ids (meta-rpc.ts). An operation whose names and
// inodes share a copyset is one Raft entry; the others run in an order that leaves, after a
// crash, at worst an inode with too high an nlink (a leak), never a dentry pointing nowhere.
import type { Logger } from '../common/log.js';
import { silentLogger } from '../common/log.js';
import { sleep } from '../common/grpc.js';
import { StatusCode, TierfsError } from '../common/status.js';
import type * as M from './client-types.js';
import { msgToInode, msgToSlice, sliceToMsg } from './convert.js';
import { MetaRpc } from './meta-rpc.js';
import { PartitionRouter, type PartitionDirectory, type PartitionRoute } from './partition-router.js';
import { UpdateMask } from './records.js';
import { exchangeEntries, renameEntry } from './client-rename.js';
import { TrashShards, removeToTrash } from './trash-shards.js';
import {
  MAX_NAME_BYTES, ROOT_INO, S_IFDIR, S_IFMT, type AppendResult, type AppendRun, type CreateNodeOptions, type Dentry, type FsUsage,
  type Inode, type InodeAttr, type FileSizeAndTimes, type MetaClient, type ReleaseOptions, type RenameResult, type SetAttrChanges, type SliceRecord, type TrashRemoval,
} from './meta-client.js';

export type { PartitionDirectory, PartitionLocationInfo } from './partition-router.js';

export interface RemoteMetaClientOptions {
  fsId: number;
  mds: PartitionDirectory;
  logger?: Logger;
  /** How long one metadata call keeps retrying across leader changes. Default 30 s. */
  deadlineMs?: number;
}

export function checkName(name: string): void {
  if (!name || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new TierfsError(StatusCode.INVALID_ARGUMENT, `invalid name ${JSON.stringify(name)}`);
  }
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw new TierfsError(StatusCode.NAME_TOO_LONG, `name longer than ${MAX_NAME_BYTES} bytes`);
}

const isDir = (mode: number) => (mode & S_IFMT) === S_IFDIR;

/** The one-entry form needs an inode of another copyset: the caller takes the multi-step path. */
export const isElsewhere = (err: unknown): boolean => err instanceof TierfsError && err.code === StatusCode.NOT_SUPPORTED;

export class RemoteMetaClient implements MetaClient {
  readonly fsId: number;
  readonly rpc: MetaRpc;
  readonly router: PartitionRouter;
  readonly logger: Logger;
  private readonly trashShards = new TrashShards(this);

  constructor(opts: RemoteMetaClientOptions) {
    this.fsId = opts.fsId;
    this.logger = opts.logger ?? silentLogger;
    this.rpc = new MetaRpc({ locator: opts.mds, logger: this.logger, deadlineMs: opts.deadlineMs });
    this.router = new PartitionRouter(opts.fsId, opts.mds, (r) => this.rpc.setLocation(r.poolId, r.copysetId, r.peers, r.leader), this.logger);
  }

  ref(r: PartitionRoute): M.PartitionRef {
    return { pool_id: r.poolId, copyset_id: r.copysetId, partition_id: r.partitionId, fs_id: r.fsId };
  }

  /** Calls a method on the partition's copyset leader; non-OK statuses throw. */
  async call<Res extends M.WithStatus>(r: PartitionRoute, method: string, req: object, write = false): Promise<Res> {
    const full = { ref: this.ref(r), ...req, ...(write ? { rid: this.rpc.newRequestId() } : {}) };
    return this.rpc.call<Res>(r.poolId, r.copysetId, method, full);
  }

  /** Retries an operation that met a rename holding a name, until the rename finishes. */
  async retryConflicts<T>(fn: () => Promise<T>, deadlineMs = 20_000): Promise<T> {
    const until = Date.now() + deadlineMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!(err instanceof TierfsError) || err.code !== StatusCode.TX_CONFLICT || Date.now() > until) throw err;
        await sleep(Math.min(20 * attempt, 300));
      }
    }
  }

  async lookup(parent: number, name: string): Promise<Dentry> {
    checkName(name);
    const r = await this.router.route(parent);
    return this.retryConflicts(async () => {
      const res = await this.call<M.DentryResponse>(r, 'GetDentry', { parent, name });
      const d = res.dentry!;
      const dentry: Dentry = { parent: Number(d.parent), name: d.name, ino: Number(d.ino), type: d.type };
      if (res.inode) dentry.inode = msgToInode(res.inode);
      return dentry;
    });
  }

  async maybeLookup(parent: number, name: string): Promise<Dentry | null> {
    try {
      return await this.lookup(parent, name);
    } catch (err) {
      if (err instanceof TierfsError && err.code === StatusCode.NOT_FOUND) return null;
      throw err;
    }
  }

  async listDentries(parent: number, last: string, count: number): Promise<Dentry[]> {
    const r = await this.router.route(parent);
    const res = await this.call<M.ListDentryResponse>(r, 'ListDentry', { parent, last, count });
    return res.dentries as Dentry[];
  }

  async getInode(ino: number): Promise<Inode> {
    const r = await this.router.route(ino);
    const res = await this.call<M.InodeResponse>(r, 'GetInode', { ino });
    return msgToInode(res.inode!);
  }

  async batchGetAttr(inos: number[]): Promise<InodeAttr[]> {
    return (await this.batchGetInodes(inos)).map(({ symlink: _s, parents: _p, ...attr }) => attr);
  }

  async batchGetInodes(inos: number[]): Promise<Inode[]> {
    const groups = new Map<PartitionRoute, number[]>();
    for (const ino of inos) {
      const r = await this.router.route(ino);
      groups.set(r, [...(groups.get(r) ?? []), ino]);
    }
    const found = new Map<number, Inode>();
    await Promise.all(
      [...groups].map(async ([r, list]) => {
        const res = await this.call<M.BatchGetAttrResponse>(r, 'BatchGetAttr', { inos: list });
        for (const a of res.attrs) found.set(a.ino, msgToInode(a));
      }),
    );
    return inos.filter((i) => found.has(i)).map((i) => found.get(i)!);
  }

  /**
   * Creates an inode on a writable partition (of `near`'s copyset when it has one), moving on
   * when one turns out to be out of ids.
   */
  private async newInode(parent: number, opts: CreateNodeOptions, near?: PartitionRoute): Promise<{ inode: Inode; route: PartitionRoute }> {
    for (let tries = 0; tries < 16; tries++) {
      const r = (near && this.router.writableNear(near)) || (await this.router.writable());
      try {
        const res = await this.call<M.InodeResponse>(r, 'CreateInode', {
          mode: opts.mode, uid: opts.uid, gid: opts.gid, rdev: opts.rdev ?? 0, symlink: opts.symlink ?? '', parent,
        }, true);
        return { inode: msgToInode(res.inode!), route: r };
      } catch (err) {
        if (!(err instanceof TierfsError) || err.code !== StatusCode.READ_ONLY) throw err;
        this.router.markReadOnly(r.partitionId);
      }
    }
    throw new TierfsError(StatusCode.NO_SPACE, `fs ${this.fsId}: no partition with free inode ids`);
  }

  async createNode(parent: number, name: string, opts: CreateNodeOptions): Promise<Inode> {
    return (await this.createNodeWithParent(parent, name, opts)).inode;
  }

  /**
   * One Raft entry (CreateNode) when the new inode can live in the parent's copyset, else
   * CreateInode then CreateDentry. New inodes go to the parent's own partition, next to their
   * name (a lookup then returns their attributes too, and unlink, rmdir, link and rename in
   * that subtree are one entry each); only directories made in the root are spread round
   * robin over the partitions, so top-level subtrees spread over copysets. `near`: place the
   * inode in that partition's copyset instead (the recycle bin's shards, trash-shards.ts).
   */
  async createNodeWithParent(parent: number, name: string, opts: CreateNodeOptions, near?: PartitionRoute): Promise<{ inode: Inode; parent?: Inode; created?: boolean }> {
    checkName(name);
    const pr = await this.router.route(parent);
    let candidate: PartitionRoute | undefined;
    for (let tries = 0; tries < 16; tries++) {
      candidate = near ? this.router.writableNear(near) : isDir(opts.mode) && parent === ROOT_INO ? await this.router.writable() : this.router.writableNear(pr);
      if (!candidate || candidate.poolId !== pr.poolId || candidate.copysetId !== pr.copysetId) break;
      const target = candidate;
      try {
        const res = await this.retryConflicts(() =>
          this.call<M.CreateNodeResponse>(pr, 'CreateNode', {
            inode_partition_id: target.partitionId, parent, name,
            mode: opts.mode, uid: opts.uid, gid: opts.gid, rdev: opts.rdev ?? 0, symlink: opts.symlink ?? '',
          }, true),
        );
        return { inode: msgToInode(res.inode!), parent: msgToInode(res.parent_inode!), created: true };
      } catch (err) {
        if (err instanceof TierfsError && err.code === StatusCode.READ_ONLY) {
          this.router.markReadOnly(target.partitionId);
          candidate = undefined;
          continue;
        }
        if (err instanceof TierfsError && err.code === StatusCode.EXISTS && !opts.exclusive) {
          return { inode: await this.getInode((await this.lookup(parent, name)).ino) };
        }
        throw err;
      }
    }
    // The partition picked above, in another copyset: not a second pick of the round robin.
    return { inode: await this.createNodeInTwoSteps(pr, parent, name, opts, near ?? candidate) };
  }

  private async createNodeInTwoSteps(pr: PartitionRoute, parent: number, name: string, opts: CreateNodeOptions, near?: PartitionRoute): Promise<Inode> {
    const existing = await this.maybeLookup(parent, name);
    if (existing) {
      if (opts.exclusive) throw new TierfsError(StatusCode.EXISTS, `${JSON.stringify(name)} exists`);
      return this.getInode(existing.ino);
    }
    const { inode, route } = await this.newInode(parent, opts, near);
    try {
      await this.retryConflicts(() =>
        this.call(pr, 'CreateDentry', { dentry: { parent, name, ino: inode.ino, type: inode.mode & S_IFMT } }, true),
      );
    } catch (err) {
      await this.call(route, 'DeleteInode', { ino: inode.ino }, true).catch((e: unknown) =>
        this.logger.warn({ err: e, ino: inode.ino }, 'could not remove the inode of a failed create'),
      );
      if (err instanceof TierfsError && err.code === StatusCode.EXISTS && !opts.exclusive) {
        return this.getInode((await this.lookup(parent, name)).ino);
      }
      throw err;
    }
    return inode;
  }

  async updateInode(ino: number, req: Partial<M.UpdateInodeFields>): Promise<Inode> {
    const r = await this.router.route(ino);
    const res = await this.call<M.InodeResponse>(r, 'UpdateInode', { ino, ...req }, true);
    return msgToInode(res.inode!);
  }

  /** One entry (LinkNode) when the inode lives in the parent's copyset; else inode first, then the name. */
  async link(ino: number, parent: number, name: string): Promise<Inode> {
    checkName(name);
    const pr = await this.router.route(parent);
    try {
      const res = await this.retryConflicts(() => this.call<M.InodeResponse>(pr, 'LinkNode', { ino, parent, name }, true));
      return msgToInode(res.inode!);
    } catch (err) {
      if (!isElsewhere(err)) throw err;
    }
    const target = await this.getInode(ino);
    if (isDir(target.mode)) throw new TierfsError(StatusCode.PERMISSION_DENIED, `cannot hard-link directory ${ino}`);
    if (await this.maybeLookup(parent, name)) throw new TierfsError(StatusCode.EXISTS, `${JSON.stringify(name)} exists`);
    const after = await this.updateInode(ino, { nlink_delta: 1, add_parent: parent, touch_ctime: true });
    try {
      await this.retryConflicts(() => this.call(pr, 'CreateDentry', { dentry: { parent, name, ino, type: target.mode & S_IFMT } }, true));
    } catch (err) {
      await this.updateInode(ino, { nlink_delta: -1, remove_parent: parent, touch_ctime: true }).catch(() => undefined);
      throw err;
    }
    return after;
  }

  /**
   * One entry (RemoveNode): the name, the parent, and the inode's nlink when it lives in the
   * parent's copyset (always for files created there), and with `releaseIno` the trash too.
   * An inode elsewhere gets its nlink - 1 in a second call, after the name is gone.
   */
  async unlink(parent: number, name: string, opts: ReleaseOptions = {}): Promise<Inode> {
    return (await this.unlinkWithParent(parent, name, opts)).inode;
  }

  async unlinkWithParent(parent: number, name: string, opts: ReleaseOptions = {}): Promise<{ inode: Inode; parent?: Inode }> {
    const pr = await this.router.route(parent);
    const res = await this.retryConflicts(() =>
      this.call<M.RemoveNodeResponse>(pr, 'RemoveNode', { parent, name, dir: false, release_ino: opts.releaseIno ?? 0 }, true),
    );
    const dir = res.parent_inode ? { parent: msgToInode(res.parent_inode) } : {};
    if (res.inode) return { inode: msgToInode(res.inode), ...dir };
    const ino = Number(res.dentry!.ino);
    const after = await this.updateInode(ino, { nlink_delta: -1, remove_parent: parent, touch_ctime: true });
    if (after.nlink === 0 && opts.releaseIno === ino) await this.releaseOrphan(ino);
    return { inode: after, ...dir };
  }

  /** One entry (RemoveNode, emptiness checked at apply) when the directory's inode lives in the parent's copyset. */
  async rmdir(parent: number, name: string): Promise<void> {
    const pr = await this.router.route(parent);
    await this.retryConflicts(async () => {
      try {
        await this.call(pr, 'RemoveNode', { parent, name, dir: true }, true);
        return;
      } catch (err) {
        if (!isElsewhere(err)) throw err;
      }
      // The directory's inode lives in another copyset: check emptiness there, then name, then inode.
      const d = await this.lookup(parent, name);
      if (!isDir(d.type)) throw new TierfsError(StatusCode.NOT_DIR, `${JSON.stringify(name)} is not a directory`);
      if ((await this.listDentries(d.ino, '', 1)).length > 0) throw new TierfsError(StatusCode.NOT_EMPTY, `${JSON.stringify(name)} is not empty`);
      await this.call(pr, 'DeleteDentry', { parent, name, expect_ino: d.ino }, true);
      await this.call(await this.router.route(d.ino), 'DeleteInode', { ino: d.ino }, true);
    });
  }

  rename(srcParent: number, srcName: string, dstParent: number, dstName: string, opts: ReleaseOptions = {}): Promise<RenameResult> {
    return renameEntry(this, srcParent, srcName, dstParent, dstName, opts);
  }

  removeToTrash(parent: number, name: string, dir: boolean): Promise<TrashRemoval> {
    return removeToTrash(this, this.trashShards, parent, name, dir);
  }

  exchange(srcParent: number, srcName: string, dstParent: number, dstName: string): Promise<void> {
    return exchangeEntries(this, srcParent, srcName, dstParent, dstName);
  }

  async setAttr(ino: number, changes: SetAttrChanges): Promise<Inode> {
    let mask = 0;
    const req: Partial<M.UpdateInodeFields> = { touch_ctime: changes.ctimeMs === undefined };
    if (changes.mode !== undefined) (mask |= UpdateMask.MODE), (req.mode = changes.mode);
    if (changes.uid !== undefined) (mask |= UpdateMask.UID), (req.uid = changes.uid);
    if (changes.gid !== undefined) (mask |= UpdateMask.GID), (req.gid = changes.gid);
    if (changes.size !== undefined) (mask |= UpdateMask.SIZE), (req.size = changes.size), changes.sizeGrowOnly && (req.size_grow_only = true);
    if (changes.atimeMs !== undefined) (mask |= UpdateMask.ATIME), (req.atime_ms = changes.atimeMs);
    if (changes.mtimeMs !== undefined) (mask |= UpdateMask.MTIME), (req.mtime_ms = changes.mtimeMs);
    else if (changes.size !== undefined) (mask |= UpdateMask.MTIME), (req.mtime_ms = Date.now());
    if (changes.ctimeMs !== undefined) (mask |= UpdateMask.CTIME), (req.ctime_ms = changes.ctimeMs);
    req.mask = mask;
    return this.updateInode(ino, req);
  }

  async getXattr(ino: number, name: string): Promise<Buffer> {
    const res = await this.call<M.XattrResponse>(await this.router.route(ino), 'GetXattr', { ino, name });
    return Buffer.from(res.value);
  }

  async listXattr(ino: number): Promise<string[]> {
    const res = await this.call<M.XattrResponse>(await this.router.route(ino), 'ListXattr', { ino });
    return res.names;
  }

  async setXattr(ino: number, name: string, value: Buffer, flags: number): Promise<void> {
    await this.call(await this.router.route(ino), 'SetXattr', { ino, name, value, flags }, true);
  }

  async removeXattr(ino: number, name: string): Promise<void> {
    await this.call(await this.router.route(ino), 'RemoveXattr', { ino, name }, true);
  }

  async getSlices(ino: number): Promise<Map<number, SliceRecord[]>> {
    const res = await this.call<M.ChunkInfoResponse>(await this.router.route(ino), 'GetOrModifyS3ChunkInfo', { ino, return_chunks: true });
    return new Map(res.chunks.map((c) => [c.chunk_index, c.slices.map(msgToSlice)]));
  }

  async appendSlices(ino: number, added: Map<number, SliceRecord[]>): Promise<Inode | void> {
    const append = [...added].map(([chunk_index, list]) => ({ chunk_index, slices: list.map(sliceToMsg) }));
    const res = await this.call<M.ChunkInfoResponse>(await this.router.route(ino), 'GetOrModifyS3ChunkInfo', { ino, append }, true);
    return res.inode ? msgToInode(res.inode) : undefined;
  }

  async appendSlicesAndAttrs(ino: number, added: Map<number, SliceRecord[]>, attrs: FileSizeAndTimes): Promise<Inode | void> {
    const append = [...added].map(([chunk_index, list]) => ({ chunk_index, slices: list.map(sliceToMsg) }));
    const res = await this.call<M.ChunkInfoResponse>(await this.router.route(ino), 'GetOrModifyS3ChunkInfo', {
      ino, append, set_attrs: true, size: attrs.size, mtime_ms: attrs.mtimeMs, ctime_ms: attrs.ctimeMs, size_grow_only: !!attrs.growOnly,
    }, true);
    return res.inode ? msgToInode(res.inode) : undefined;
  }

  async appendRun(ino: number, run: AppendRun): Promise<AppendResult> {
    const res = await this.call<M.ChunkInfoResponse>(await this.router.route(ino), 'GetOrModifyS3ChunkInfo', {
      ino,
      append_run: {
        chunk_id: run.chunkId, len: run.len, owner_chunk_id: run.ownerChunkId, owner_offset: run.ownerOffset,
        chunk_size: run.chunkSize, block_size: run.blockSize, mtime_ms: run.mtimeMs, ctime_ms: run.ctimeMs,
      },
    }, true);
    if (!res.inode) throw new TierfsError(StatusCode.NOT_SUPPORTED, 'the metaserver does not place O_APPEND runs (an older version)');
    return { base: res.append_base, inode: msgToInode(res.inode) };
  }

  async replaceSlices(ino: number, chunkIndex: number, removed: SliceRecord[], added: SliceRecord[]): Promise<void> {
    await this.call(await this.router.route(ino), 'GetOrModifyS3ChunkInfo', {
      ino, replace: true, replace_chunk_index: chunkIndex, removed: removed.map(sliceToMsg), added: added.map(sliceToMsg),
    }, true);
  }

  async releaseOrphan(ino: number): Promise<void> {
    await this.call(await this.router.route(ino), 'ReleaseOrphan', { ino }, true);
  }

  async usage(): Promise<FsUsage> {
    if (this.router.all().length === 0) await this.router.refresh();
    const stats = await Promise.all(this.router.all().map((r) => this.call<M.PartitionStatsResponse>(r, 'GetPartitionStats', {})));
    return { inodes: stats.reduce((n, s) => n + s.inode_count, 0), usedBytes: stats.reduce((n, s) => n + s.used_bytes, 0) };
  }

  async close(): Promise<void> {
    this.rpc.close();
  }
}
