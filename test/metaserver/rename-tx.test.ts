// Rename transactions whose client vanished halfway are resolved by the destination's
// leader: committed at the source -> applied at the destination; only prepared -> aborted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { RemoteMetaClient } from '../../metaserver/client.js';
import { txToMsg } from '../../metaserver/convert.js';
import type { RenameTxRecord } from '../../metaserver/records.js';
import { S_IFDIR, S_IFREG } from '../../metaserver/meta-client.js';
import { TierfsError } from '../../common/status.js';
import { startSoloMetaServer } from './fixture.js';

test('abandoned renames: a committed one finishes at the destination, a prepared one is aborted for good', async () => {
  const ms = await startSoloMetaServer();
  const c = new RemoteMetaClient({ fsId: 1, mds: ms.directory });
  try {
    await ms.addPartition(1, 1, 1, 100);
    await ms.addPartition(2, 2, 101, 200);
    // A directory in the second partition (inodes are placed round robin).
    let dst = await c.createNode(1, 'd0', { mode: S_IFDIR | 0o755, uid: 0, gid: 0, exclusive: true });
    for (let i = 1; dst.ino < 101; i++) dst = await c.createNode(1, `d${i}`, { mode: S_IFDIR | 0o755, uid: 0, gid: 0, exclusive: true });
    const sr = await c.router.route(1);
    const dr = await c.router.route(dst.ino);
    const txOf = (name: string, ino: number): RenameTxRecord => ({
      txId: randomUUID(), srcPool: sr.poolId, srcCopyset: sr.copysetId, srcPartition: sr.partitionId, srcFs: 1, srcPeers: sr.peers,
      srcParent: 1, srcName: name, ino, type: S_IFREG, dstPool: dr.poolId, dstCopyset: dr.copysetId, dstPartition: dr.partitionId,
      dstParent: dst.ino, dstName: `${name}2`, replacedIno: 0, replacedType: 0,
    });
    const file = { mode: S_IFREG | 0o644, uid: 0, gid: 0, exclusive: true };

    // Committed at the source, then the client "dies" before FinishRename.
    const f = await c.createNode(1, 'f', file);
    const t1 = txOf('f', f.ino);
    await c.call(dr, 'PrepareRename', { tx: txToMsg(t1, 1) }, true);
    await c.call(sr, 'CommitRename', { tx: txToMsg(t1, 1) }, true);
    // Readers of the locked name wait (TX_CONFLICT, retried) until the resolver finished it.
    assert.equal((await c.lookup(dst.ino, 'f2')).ino, f.ino);
    await assert.rejects(c.lookup(1, 'f'), (e: unknown) => e instanceof TierfsError && e.code === 'NOT_FOUND');

    // Only prepared: the resolver aborts it at the source, so a late commit fails.
    const g = await c.createNode(1, 'g', file);
    const t2 = txOf('g', g.ino);
    await c.call(dr, 'PrepareRename', { tx: txToMsg(t2, 1) }, true);
    await assert.rejects(c.lookup(dst.ino, 'g2'), (e: unknown) => e instanceof TierfsError && e.code === 'NOT_FOUND');
    await assert.rejects(c.call(sr, 'CommitRename', { tx: txToMsg(t2, 1) }, true), (e: unknown) => e instanceof TierfsError && e.code === 'TX_CONFLICT');
    assert.equal((await c.lookup(1, 'g')).ino, g.ino);
    for (const n of ms.manager.list()) assert.equal((await n.reader.preparedTxs()).length, 0);
  } finally {
    await c.close();
    await ms.close();
  }
});
