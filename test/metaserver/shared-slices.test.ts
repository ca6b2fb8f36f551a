// Copy by reference through a real metaserver (gRPC, Raft log, level) and a real s3rver:
// references and shared marks survive the round trip; the trash job of a deleted source
// deletes none of the objects its copy reads; a stale compaction swap conflicts; sharing the
// slices of an inode already in the trash is refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Level } from 'level';
import { RemoteMetaClient } from '../../metaserver/client.js';
import { S_IFREG } from '../../metaserver/meta-client.js';
import { MetaStateMachine } from '../../metaserver/state-machine.js';
import type { MetaOp, OpResult } from '../../metaserver/records.js';
import { inodeObjectKeys } from '../../metaserver/s3-deleter.js';
import type { ObjectDeleter } from '../../metaserver/copyset-node.js';
import { StatusCode, TierfsError } from '../../common/status.js';
import { S3Adaptor } from '../../s3adaptor/adaptor.js';
import { MemoryChunkIdAllocator } from '../../s3adaptor/memory-slice-store.js';
import type { ObjectStore } from '../../s3adaptor/object-store.js';
import { startS3, type TestS3 } from '../support/s3.js';
import { tempDir } from '../support/tmp.js';
import { storeFor, waitFor } from '../s3adaptor/fixture.js';
import { startSoloMetaServer, type SoloMetaServer } from './fixture.js';

const KiB = 1024;
const CHUNK = 64 * KiB;
const BLOCK = 16 * KiB;
const file = { mode: S_IFREG | 0o644, uid: 1, gid: 1, exclusive: true };
const code = (c: string) => (err: unknown) => err instanceof TierfsError && err.code === c;
let s3: TestS3;
let store: ObjectStore;
let ms: SoloMetaServer;
let c: RemoteMetaClient;
const deleted: string[] = [];
const ids = new MemoryChunkIdAllocator();

before(async () => {
  s3 = await startS3();
  store = storeFor(s3, { keyPrefix: 'shared/' });
  // The trash job's deleter, with the production key logic (metaserver/s3-deleter.ts).
  const deleter: ObjectDeleter = {
    deleteInodeObjects: async (fsId, ino, slices) => {
      const keys = inodeObjectKeys(fsId, ino, slices, BLOCK, CHUNK);
      deleted.push(...keys);
      await store.deleteMany(keys);
    },
  };
  ms = await startSoloMetaServer(1, deleter);
  await ms.addPartition(1, 1, 1, 100);
  c = new RemoteMetaClient({ fsId: 1, mds: ms.directory });
});
after(async () => {
  await c.close();
  await ms.close();
  store.close();
  await s3.close();
});

const adaptor = () => new S3Adaptor({ fsId: 1, chunkSize: CHUNK, blockSize: BLOCK, objectStore: store, sliceStore: c, chunkIds: ids, compactThreshold: 0 });

test('the trash job of a deleted source leaves every object its copy reads; a stale swap conflicts', async () => {
  const src = (await c.createNode(1, 'src', file)).ino;
  const dst = (await c.createNode(1, 'dst', file)).ino;
  const size = 2 * CHUNK + 777;
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i++) data[i] = (i * 31 + 7) & 0xff;
  const a = adaptor();
  // Two writes, so the source's second chunk holds two slices.
  await a.write(src, 0, data.subarray(0, CHUNK + 100));
  await a.flush(src);
  const stale = (await c.getSlices(src)).get(0)!;
  await a.write(src, CHUNK + 100, data.subarray(CHUNK + 100));
  await a.flush(src);
  assert.equal(await a.copyRange(src, 0, dst, 0, size, size), size);
  await c.setAttr(dst, { size });

  for (const list of (await c.getSlices(src)).values()) for (const s of list) assert.equal(s.shared, true, 'marked through gRPC and Raft');
  const refs = [...(await c.getSlices(dst)).values()].flat();
  assert.ok(refs.length >= 3 && refs.every((s) => s.ref?.ino === src && !s.shared), 'references came back whole');
  // A compaction that read the slices before they were shared must not swap them out.
  await assert.rejects(c.replaceSlices(src, 0, stale, []), code(StatusCode.TX_CONFLICT));

  // Delete the source: unlink, release, and its trash job runs (background, 100 ms).
  await c.unlink(1, 'src');
  await c.releaseOrphan(src);
  await waitFor('the source to be purged', () => c.getInode(src).then(() => false, () => true));
  await a.close();
  assert.deepEqual(deleted, [], 'the trash job deleted none of the shared objects');
  const b = adaptor();
  assert.ok((await b.read(dst, 0, size, size)).equals(data), 'the copy reads whole, straight from S3');
  await b.close();
});

async function withSm(fn: (apply: (op: MetaOp) => Promise<OpResult>) => Promise<void>) {
  const tmp = tempDir('tierfs-sm-');
  const db = new Level<string, string>(join(tmp.path, 'db'));
  await db.open();
  const sm = await new MetaStateMachine(db, 1, 7).load();
  let index = 0;
  const apply = async (op: MetaOp) => (await sm.apply([{ index: ++index, term: 1, data: Buffer.from(JSON.stringify(op)) }]))[0] as OpResult;
  try {
    await fn(apply);
  } finally {
    await db.close();
    tmp.remove();
  }
}

test('sharing the slices of an inode in the trash is refused (its objects are being deleted)', async () => {
  await withSm(async (apply) => {
    await apply({ op: 'createPartition', partition: { fsId: 1, poolId: 1, copysetId: 7, partitionId: 1, start: 1, end: 100 }, now: 1 });
    await apply({ op: 'createInode', pid: 1, mode: S_IFREG, uid: 0, gid: 0, rdev: 0, symlink: '', parent: 1, now: 2 });
    const s = { chunkId: 1, compaction: 0, offset: 0, len: 10, size: 10, zero: false };
    await apply({ op: 'modifySlices', pid: 1, ino: 2, append: [[0, [s]]], replace: null });
    const share: MetaOp = { op: 'modifySlices', pid: 1, ino: 2, append: [], replace: { chunkIndex: 0, removed: [s], added: [{ ...s, shared: true }] } };
    const nlinkDown = { mask: 0, mode: 0, uid: 0, gid: 0, size: 0, atimeMs: 0, mtimeMs: 0, ctimeMs: 0, nlinkDelta: -1, addParent: 0, removeParent: 1, touchCtime: true };
    await apply({ op: 'updateInode', pid: 1, ino: 2, now: 3, changes: nlinkDown });
    // Unlinked but not yet released (open somewhere): still a valid copy source.
    assert.equal((await apply(share)).code, 'OK');
    await apply({ op: 'modifySlices', pid: 1, ino: 2, append: [[0, [{ ...s, chunkId: 2 }]]], replace: null });
    await apply({ op: 'releaseOrphan', pid: 1, ino: 2, now: 4 });
    const s2 = { ...s, chunkId: 2 };
    const late = await apply({ op: 'modifySlices', pid: 1, ino: 2, append: [], replace: { chunkIndex: 0, removed: [s2], added: [{ ...s2, shared: true }] } });
    assert.equal(late.code, 'NOT_FOUND');
  });
});
