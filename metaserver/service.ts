// MetaServerService: the gateway-facing metadata RPCs (proto/metaserver.proto). Every
// request names its partition; the copyset's leader answers, followers say NOT_LEADER.
import type * as grpc from '@grpc/grpc-js';
import { Histogram, type Registry } from 'prom-client';
import { handler, loadProto } from '../common/grpc.js';
import { ok, statusOf, StatusCode, TierfsError } from '../common/status.js';
import type { ProtoGrpcType } from '../proto/gen/metaserver.js';
import type { PartitionRef__Output } from '../proto/gen/tierfs/metaserver/PartitionRef.js';
import * as M from './service-types.js';
import type { CopysetNodeManager } from './copyset-manager.js';
import type { CopysetNode } from './copyset-node.js';
import type { OpResult } from './records.js';
import { inodeToMsg, msgToSlice, ridFromMsg, sliceToMsg, txFromMsg } from './convert.js';
import { MAX_NAME_BYTES } from './meta-client.js';
import { MAX_BATCH_ITEMS } from './rpc-batcher.js';
import { quotaHandlers } from './quota-service.js';

/** Runs fn and puts its outcome into a response's status; a TierfsError becomes its code. */
function respond<Res extends { status?: unknown }>(fn: () => Promise<Omit<Res, 'status'>>): Promise<Res> {
  return fn().then(
    (res) => ({ ...res, status: ok() }) as Res,
    (err: unknown) => ({ status: statusOf(err) }) as Res,
  );
}

/** Times every call per method and answered status code. */
function instrument(impl: grpc.UntypedServiceImplementation, registry: Registry): grpc.UntypedServiceImplementation {
  const seconds = new Histogram({
    name: 'tierfs_metaserver_rpc_seconds', help: 'MetaServerService calls by method and status code',
    labelNames: ['method', 'code'], buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2, 10], registers: [registry],
  });
  const out: grpc.UntypedServiceImplementation = {};
  for (const [method, fn] of Object.entries(impl)) {
    const unaryFn = fn as grpc.handleUnaryCall<unknown, { status?: { code?: string } }>;
    out[method] = ((call, callback) => {
      const end = seconds.startTimer({ method });
      unaryFn(call, (err, res) => {
        end({ code: err ? 'GRPC_ERROR' : (res?.status?.code ?? 'OK') });
        callback(err, res);
      });
    }) as grpc.handleUnaryCall<unknown, { status?: { code?: string } }>;
  }
  return out;
}

function resultOk(res: OpResult): OpResult {
  if (res.code !== StatusCode.OK) throw new TierfsError(res.code, res.message ?? res.code);
  return res;
}

function checkName(name: string): void {
  if (!name || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new TierfsError(StatusCode.INVALID_ARGUMENT, `invalid name ${JSON.stringify(name)}`);
  }
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw new TierfsError(StatusCode.NAME_TOO_LONG, `name longer than ${MAX_NAME_BYTES} bytes`);
}

export function metaServerService(copysets: CopysetNodeManager, registry?: Registry): [grpc.ServiceDefinition, grpc.UntypedServiceImplementation] {
  const svc = loadProto<ProtoGrpcType>('metaserver.proto').tierfs.metaserver.MetaServerService.service;
  const nodeOf = (ref: PartitionRef__Output | null): CopysetNode => {
    if (!ref) throw new TierfsError(StatusCode.INVALID_ARGUMENT, 'request names no partition');
    return copysets.get(ref.pool_id, ref.copyset_id);
  };
  const pidOf = (ref: PartitionRef__Output | null): number => ref?.partition_id ?? 0;
  const now = () => Date.now();

  const impl: grpc.UntypedServiceImplementation = {
    GetDentry: handler((req: M.GetDentryRequest) =>
      respond<M.DentryResponse>(async () =>
        nodeOf(req.ref).read(async (r) => {
          const dentry = await r.dentry(pidOf(req.ref), req.parent, req.name);
          // The child's attributes ride along when this copyset holds them: a lookup then
          // costs the gateway one round trip instead of two.
          const inode = await r.inodeIfLocal(pidOf(req.ref), dentry.ino);
          return inode ? { dentry, inode: inodeToMsg(inode) } : { dentry };
        }),
      ),
    ),
    ListDentry: handler((req: M.ListDentryRequest) =>
      respond<M.ListDentryResponse>(async () => ({
        dentries: await nodeOf(req.ref).read((r) => r.listDentries(pidOf(req.ref), req.parent, req.last, req.count)),
      })),
    ),
    CreateDentry: handler((req: M.CreateDentryRequest) =>
      respond<M.StatusOnlyResponse>(async () => {
        const d = req.dentry;
        if (!d) throw new TierfsError(StatusCode.INVALID_ARGUMENT, 'no dentry given');
        checkName(d.name);
        resultOk(await nodeOf(req.ref).write({
          op: 'createDentry', pid: pidOf(req.ref), rid: ridFromMsg(req.rid), parent: d.parent, name: d.name, ino: d.ino, type: d.type, now: now(),
        }));
        return {};
      }),
    ),
    DeleteDentry: handler((req: M.DeleteDentryRequest) =>
      respond<M.DentryResponse>(async () => {
        const res = resultOk(await nodeOf(req.ref).write({
          op: 'deleteDentry', pid: pidOf(req.ref), rid: ridFromMsg(req.rid), parent: req.parent, name: req.name, expectIno: req.expect_ino, now: now(),
        }));
        return { dentry: { parent: req.parent, name: req.name, ino: res.dentry?.ino ?? 0, type: res.dentry?.type ?? 0 } };
      }),
    ),
    GetInode: handler((req: M.GetInodeRequest) =>
      respond<M.InodeResponse>(async () => ({
        inode: inodeToMsg(await nodeOf(req.ref).read((r) => r.inode(pidOf(req.ref), req.ino))),
      })),
    ),
    BatchGetAttr: handler((req: M.BatchGetAttrRequest) =>
      respond<M.BatchGetAttrResponse>(async () => ({
        attrs: await nodeOf(req.ref).read(async (r) => {
          const found = await Promise.all(req.inos.map((ino) => r.maybeInode(pidOf(req.ref), ino)));
          return found.filter((i) => i !== undefined).map(inodeToMsg);
        }),
      })),
    ),
    CreateInode: handler((req: M.CreateInodeRequest) =>
      respond<M.InodeResponse>(async () => {
        const res = resultOk(await nodeOf(req.ref).write({
          op: 'createInode', pid: pidOf(req.ref), rid: ridFromMsg(req.rid), mode: req.mode, uid: req.uid, gid: req.gid,
          rdev: req.rdev, symlink: req.symlink, parent: req.parent, now: now(),
        }));
        return { inode: inodeToMsg(res.inode!) };
      }),
    ),
    CreateNode: handler((req: M.CreateNodeRequest) =>
      respond<M.CreateNodeResponse>(async () => {
        checkName(req.name);
        const res = resultOk(await nodeOf(req.ref).write({
          op: 'createNode', pid: pidOf(req.ref), inodePid: req.inode_partition_id, rid: ridFromMsg(req.rid), parent: req.parent, name: req.name,
          mode: req.mode, uid: req.uid, gid: req.gid, rdev: req.rdev, symlink: req.symlink, now: now(),
        }));
        return { inode: inodeToMsg(res.inode!), parent_inode: inodeToMsg(res.parentInode!) };
      }),
    ),
    UpdateInode: handler((req: M.UpdateInodeRequest) =>
      respond<M.InodeResponse>(async () => {
        const res = resultOk(await nodeOf(req.ref).write({
          op: 'updateInode', pid: pidOf(req.ref), rid: ridFromMsg(req.rid), ino: req.ino, now: now(),
          changes: {
            mask: req.mask, mode: req.mode, uid: req.uid, gid: req.gid, size: req.size, atimeMs: req.atime_ms, mtimeMs: req.mtime_ms,
            ctimeMs: req.ctime_ms, nlinkDelta: req.nlink_delta, addParent: req.add_parent, removeParent: req.remove_parent, touchCtime: req.touch_ctime,
            ...(req.size_grow_only ? { sizeGrowOnly: true } : {}),
          },
        }));
        return { inode: inodeToMsg(res.inode!) };
      }),
    ),
    DeleteInode: handler((req: M.DeleteInodeRequest) =>
      respond<M.StatusOnlyResponse>(async () => {
        resultOk(await nodeOf(req.ref).write({ op: 'deleteInode', pid: pidOf(req.ref), rid: ridFromMsg(req.rid), ino: req.ino }));
        return {};
      }),
    ),
    ReleaseOrphan: handler((req: M.ReleaseOrphanRequest) =>
      respond<M.StatusOnlyResponse>(async () => {
        resultOk(await nodeOf(req.ref).write({ op: 'releaseOrphan', pid: pidOf(req.ref), rid: ridFromMsg(req.rid), ino: req.ino, now: now() }));
        return {};
      }),
    ),
    GetXattr: handler((req: M.GetXattrRequest) =>
      respond<M.XattrResponse>(async () => {
        const inode = await nodeOf(req.ref).read((r) => r.inode(pidOf(req.ref), req.ino));
        const value = inode.xattrs[req.name];
        if (value === undefined) throw new TierfsError(StatusCode.NO_DATA, `xattr ${req.name} not set on ${req.ino}`);
        return { value: Buffer.from(value, 'base64'), names: [] };
      }),
    ),
    ListXattr: handler((req: M.GetInodeRequest) =>
      respond<M.XattrResponse>(async () => {
        const inode = await nodeOf(req.ref).read((r) => r.inode(pidOf(req.ref), req.ino));
        return { value: Buffer.alloc(0), names: Object.keys(inode.xattrs) };
      }),
    ),
    SetXattr: handler((req: M.SetXattrRequest) =>
      respond<M.StatusOnlyResponse>(async () => {
        if (!req.name) throw new TierfsError(StatusCode.INVALID_ARGUMENT, 'empty xattr name');
        resultOk(await nodeOf(req.ref).write({
          op: 'setXattr', pid: pidOf(req.ref), rid: ridFromMsg(req.rid), ino: req.ino, name: req.name,
          value: Buffer.from(req.value).toString('base64'), flags: req.flags, now: now(),
        }));
        return {};
      }),
    ),
    RemoveXattr: handler((req: M.RemoveXattrRequest) =>
      respond<M.StatusOnlyResponse>(async () => {
        resultOk(await nodeOf(req.ref).write({ op: 'removeXattr', pid: pidOf(req.ref), rid: ridFromMsg(req.rid), ino: req.ino, name: req.name, now: now() }));
        return {};
      }),
    ),
    GetOrModifyS3ChunkInfo: handler((req: M.GetOrModifyS3ChunkInfoRequest) =>
      respond<M.GetOrModifyS3ChunkInfoResponse>(async () => {
        const node = nodeOf(req.ref);
        const pid = pidOf(req.ref);
        const run = req.append_run;
        if (run) {
          const res = resultOk(await node.write({
            op: 'appendRun', pid, rid: ridFromMsg(req.rid), ino: req.ino,
            run: {
              chunkId: run.chunk_id, len: run.len, ownerChunkId: run.owner_chunk_id, ownerOffset: run.owner_offset,
              chunkSize: run.chunk_size, blockSize: run.block_size, mtimeMs: run.mtime_ms, ctimeMs: run.ctime_ms,
            },
          }));
          return { chunks: [], inode: inodeToMsg(res.inode!), append_base: res.appendBase ?? 0 };
        }
        let changed: OpResult | null = null;
        if (req.append.length > 0 || req.replace) {
          changed = resultOk(await node.write({
            op: 'modifySlices', pid, rid: ridFromMsg(req.rid), ino: req.ino,
            append: req.append.map((c) => [c.chunk_index, c.slices.map(msgToSlice)]),
            replace: req.replace ? { chunkIndex: req.replace_chunk_index, removed: req.removed.map(msgToSlice), added: req.added.map(msgToSlice) } : null,
            ...(req.set_attrs ? { attrs: { size: Number(req.size), mtimeMs: req.mtime_ms, ctimeMs: req.ctime_ms, ...(req.size_grow_only ? { growOnly: true } : {}) } } : {}),
          }));
        }
        const inode = changed?.inode ? { inode: inodeToMsg(changed.inode) } : {};
        if (!req.return_chunks) return { chunks: [], ...inode };
        const slices = await node.read((r) => r.slices(pid, req.ino));
        return { chunks: [...slices].map(([chunk_index, list]) => ({ chunk_index, slices: list.map(sliceToMsg) })), ...inode };
      }),
    ),
    PrepareRename: handler((req: M.RenameTxRequest) =>
      respond<M.RenameTxResponse>(async () => {
        if (!req.tx) throw new TierfsError(StatusCode.INVALID_ARGUMENT, 'no transaction given');
        checkName(req.tx.dst_name);
        resultOk(await nodeOf(req.ref).write({ op: 'prepareRename', pid: pidOf(req.ref), rid: ridFromMsg(req.rid), tx: txFromMsg(req.tx), now: now() }));
        return { committed: false };
      }),
    ),
    CommitRename: handler((req: M.RenameTxRequest) =>
      respond<M.RenameTxResponse>(async () => {
        if (!req.tx) throw new TierfsError(StatusCode.INVALID_ARGUMENT, 'no transaction given');
        checkName(req.tx.dst_name);
        const res = resultOk(await nodeOf(req.ref).write({ op: 'commitRename', pid: pidOf(req.ref), rid: ridFromMsg(req.rid), tx: txFromMsg(req.tx), now: now() }));
        return { committed: res.committed ?? false };
      }),
    ),
    FinishRename: handler((req: M.FinishRenameRequest) =>
      respond<M.RenameTxResponse>(async () => {
        const res = resultOk(await nodeOf(req.ref).write({
          op: 'finishRename', pid: pidOf(req.ref), rid: ridFromMsg(req.rid), txId: req.tx_id, commit: req.commit, now: now(),
        }));
        return { committed: res.committed ?? false };
      }),
    ),
    ResolveRename: handler((req: M.ResolveRenameRequest) =>
      respond<M.RenameTxResponse>(async () => {
        const res = resultOk(await nodeOf(req.ref).write({ op: 'resolveRename', pid: pidOf(req.ref), rid: ridFromMsg(req.rid), txId: req.tx_id, now: now() }));
        return { committed: res.committed ?? false };
      }),
    ),
    RemoveNode: handler((req: M.RemoveNodeRequest) =>
      respond<M.RemoveNodeResponse>(async () => {
        const res = resultOk(await nodeOf(req.ref).write({
          op: 'removeNode', pid: pidOf(req.ref), rid: ridFromMsg(req.rid), parent: req.parent, name: req.name, dir: req.dir,
          expectIno: req.expect_ino, releaseIno: req.release_ino, now: now(),
        }));
        return {
          dentry: { parent: req.parent, name: req.name, ino: res.dentry?.ino ?? 0, type: res.dentry?.type ?? 0 },
          ...(res.inode ? { inode: inodeToMsg(res.inode) } : {}),
          released: res.released ?? false,
          ...(res.parentInode ? { parent_inode: inodeToMsg(res.parentInode) } : {}),
        };
      }),
    ),
    LinkNode: handler((req: M.LinkNodeRequest) =>
      respond<M.InodeResponse>(async () => {
        checkName(req.name);
        const res = resultOk(await nodeOf(req.ref).write({
          op: 'linkNode', pid: pidOf(req.ref), rid: ridFromMsg(req.rid), parent: req.parent, name: req.name, ino: req.ino, now: now(),
        }));
        return { inode: inodeToMsg(res.inode!) };
      }),
    ),
    RenameNode: handler((req: M.RenameNodeRequest) =>
      respond<M.RenameNodeResponse>(async () => {
        checkName(req.src_name);
        checkName(req.dst_name);
        const res = resultOk(await nodeOf(req.ref).write({
          op: 'renameNode', pid: pidOf(req.ref), dstPid: req.dst_partition_id, rid: ridFromMsg(req.rid),
          srcParent: req.src_parent, srcName: req.src_name, dstParent: req.dst_parent, dstName: req.dst_name,
          ancestryChecked: req.ancestry_checked, releaseIno: req.release_ino, now: now(),
        }));
        const r = res.renamed!;
        return {
          ino: r.ino, type: r.type, moved_done: r.movedDone,
          replaced_ino: r.replacedIno, replaced_type: r.replacedType, replaced_nlink: r.replacedNlink, replaced_done: r.replacedDone,
          ...(res.parentInode ? { src_parent_inode: inodeToMsg(res.parentInode) } : {}),
          ...(res.dstParentInode ? { dst_parent_inode: inodeToMsg(res.dstParentInode) } : {}),
        };
      }),
    ),
    TrashNode: handler((req: M.TrashNodeRequest) =>
      respond<M.TrashNodeResponse>(async () => {
        checkName(req.name);
        const res = resultOk(await nodeOf(req.ref).write({
          op: 'trashNode', pid: pidOf(req.ref), trashPid: req.trash_partition_id, rid: ridFromMsg(req.rid),
          parent: req.parent, name: req.name, dir: req.dir, trashDir: req.trash_dir, now: now(),
        }));
        return { inode: inodeToMsg(res.inode!), entry: res.trashEntry ?? '', ...(res.parentInode ? { parent_inode: inodeToMsg(res.parentInode) } : {}) };
      }),
    ),
    ExchangeNodes: handler((req: M.ExchangeNodesRequest) =>
      respond<M.StatusOnlyResponse>(async () => {
        checkName(req.src_name);
        checkName(req.dst_name);
        resultOk(await nodeOf(req.ref).write({
          op: 'exchangeNodes', pid: pidOf(req.ref), dstPid: req.dst_partition_id, rid: ridFromMsg(req.rid),
          srcParent: req.src_parent, srcName: req.src_name, dstParent: req.dst_parent, dstName: req.dst_name,
          ancestryChecked: req.ancestry_checked, now: now(),
        }));
        return {};
      }),
    ),
    GetPartitionStats: handler((req: M.PartitionStatsRequest) =>
      respond<M.PartitionStatsResponse>(async () => {
        const p = await nodeOf(req.ref).read(async (r) => r.partition(pidOf(req.ref)));
        return { inode_count: p.inodeCount, dentry_count: p.dentryCount, next_id: p.nextId, read_only: p.readOnly, used_bytes: p.usedBytes };
      }),
    ),
  };
  Object.assign(impl, quotaHandlers(nodeOf));
  const served = registry ? instrument(impl, registry) : impl;
  served.Batch = batchHandler(svc, served);
  return [svc, served];
}

/**
 * Batch: every item through its own method's handler, all started in this turn, so the
 * writes among them are proposed together and share one Raft append and fsync.
 */
function batchHandler(svc: grpc.ServiceDefinition, impl: grpc.UntypedServiceImplementation): grpc.handleUnaryCall<M.BatchRequest, M.BatchResponse> {
  return handler(async (req: M.BatchRequest) => {
    if (req.items.length > MAX_BATCH_ITEMS) throw new Error(`batch of ${req.items.length} calls; at most ${MAX_BATCH_ITEMS}`);
    const responses = await Promise.all(
      req.items.map((item) => {
        const def = item.method === 'Batch' ? undefined : svc[item.method];
        const fn = impl[item.method] as grpc.handleUnaryCall<unknown, unknown> | undefined;
        if (!def || !fn) {
          return Buffer.alloc(0); // the client knows only real methods; an empty answer decodes as status-less
        }
        return new Promise<Buffer>((resolve) => {
          const call = { request: def.requestDeserialize(Buffer.from(item.request)) } as grpc.ServerUnaryCall<unknown, unknown>;
          fn(call, (err, res) => {
            // A handler failing outside `respond` is a bug; answer it in the method's own status field.
            const out = err ? { status: statusOf(new TierfsError(StatusCode.INTERNAL, `${item.method}: ${(err as { details?: string }).details ?? 'handler failed'}`)) } : res;
            resolve(def.responseSerialize(out));
          });
        });
      }),
    );
    return { responses };
  });
}
