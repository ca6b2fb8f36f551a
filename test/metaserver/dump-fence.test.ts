// `tierfs dump` across copysets (issue 16): the records of every copyset are taken under a
// dump fence, so a rename across copysets is in the dump exactly once — also when its client
// died between CommitRename (source) and FinishRename (destination), where records taken
// from each copyset at its own instant hold the name in neither place.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { RemoteMetaClient } from '../../metaserver/client.js';
import { txToMsg } from '../../metaserver/convert.js';
import { FsSnapshot } from '../../metaserver/dump-snapshot.js';
import { dumpTree, type DumpDentry, type DumpLine } from '../../metaserver/dump.js';
import type { RenameTxRecord } from '../../metaserver/records.js';
import { S_IFREG } from '../../metaserver/meta-client.js';
import { dirOpts, fileOpts, hasCode, startSoloMetaServer, type SoloMetaServer } from './fixture.js';

/** A solo metaserver with the root in copyset 1 and directory `dst` in copyset 2. */
async function twoCopysets(txResolveAfterMs: number): Promise<{ ms: SoloMetaServer; c: RemoteMetaClient; dst: number }> {
  const ms = await startSoloMetaServer(1, undefined, txResolveAfterMs);
  const c = new RemoteMetaClient({ fsId: 1, mds: ms.directory });
  await ms.addPartition(1, 1, 1, 100);
  await ms.addPartition(2, 2, 101, 200);
  // Inodes are placed round robin: make directories until one is in the second partition.
  let dst = await c.createNode(1, 'd0', dirOpts);
  for (let i = 1; dst.ino < 101; i++) dst = await c.createNode(1, `d${i}`, dirOpts);
  return { ms, c, dst: dst.ino };
}

/** The names of the dump of fs 1 that point to `ino`, as `parent/name`. */
async function dumpedNames(ms: SoloMetaServer, ino: number, fenceLeaseMs?: number): Promise<string[]> {
  const snap = await FsSnapshot.take(ms.directory, 1, undefined, fenceLeaseMs);
  try {
    const lines: DumpLine[] = [];
    await dumpTree(snap, { type: 'header', version: 1, fs: 'fs1', fsId: 1, blockSize: 4096, chunkSize: 1 << 20, bucket: '', keyPrefix: '', dumpedAt: '' }, async (l) => {
      lines.push(l);
    });
    return lines.filter((l): l is DumpDentry => l.type === 'dentry' && l.ino === ino).map((d) => `${d.parent}/${d.name}`);
  } finally {
    await snap.close();
  }
}

test('a rename committed at its source but not finished at its destination is dumped once, at the destination', async () => {
  // The abandoned rename is resolved after 2 s: a dump taken at once sees it in doubt.
  const { ms, c, dst } = await twoCopysets(2000);
  try {
    const f = await c.createNode(1, 'f', fileOpts);
    const sr = await c.router.route(1);
    const dr = await c.router.route(dst);
    assert.notEqual(sr.copysetId, dr.copysetId, 'the two directories are in different copysets');
    const tx: RenameTxRecord = {
      txId: randomUUID(), srcPool: sr.poolId, srcCopyset: sr.copysetId, srcPartition: sr.partitionId, srcFs: 1, srcPeers: sr.peers,
      srcParent: 1, srcName: 'f', ino: f.ino, type: S_IFREG, dstPool: dr.poolId, dstCopyset: dr.copysetId, dstPartition: dr.partitionId,
      dstParent: dst, dstName: 'g', replacedIno: 0, replacedType: 0,
    };
    // The client commits and "dies" before FinishRename.
    await c.call(dr, 'PrepareRename', { tx: txToMsg(tx, 1) }, true);
    await c.call(sr, 'CommitRename', { tx: txToMsg(tx, 1) }, true);
    assert.deepEqual(await dumpedNames(ms, f.ino), [`${dst}/g`]);
  } finally {
    await c.close();
    await ms.close();
  }
});

test('a dump fence refuses renames across copysets while it holds and lapses without its dump', async () => {
  const { ms, c, dst } = await twoCopysets(300);
  try {
    const f = await c.createNode(1, 'f', fileOpts);
    const dr = await c.router.route(dst);
    const until = Date.now() + 1500;
    await ms.manager.get(1, dr.copysetId).writeOk({ op: 'dumpFence', fsId: 1, fenceId: 'dead-dump', until, now: Date.now() });
    const tx: RenameTxRecord = {
      txId: randomUUID(), srcPool: 1, srcCopyset: 1, srcPartition: 1, srcFs: 1, srcPeers: [ms.address], srcParent: 1, srcName: 'f', ino: f.ino,
      type: S_IFREG, dstPool: dr.poolId, dstCopyset: dr.copysetId, dstPartition: dr.partitionId, dstParent: dst, dstName: 'g', replacedIno: 0, replacedType: 0,
    };
    await assert.rejects(c.call(dr, 'PrepareRename', { tx: txToMsg(tx, 1) }, true), hasCode('TX_CONFLICT'));
    // The client retries conflicts, so its rename goes through once the fence lapsed.
    await c.rename(1, 'f', dst, 'g');
    assert.ok(Date.now() >= until, 'the rename waited for the fence to lapse');
    assert.equal((await c.lookup(dst, 'g')).ino, f.ino);
  } finally {
    await c.close();
    await ms.close();
  }
});

test('dumps taken while a file is renamed back and forth across copysets hold it exactly once', async () => {
  const { ms, c, dst } = await twoCopysets(300);
  let stop = false;
  let renames = 0;
  const f = await c.createNode(1, 'f', fileOpts);
  const writer = (async () => {
    for (let inRoot = true; !stop; inRoot = !inRoot) {
      await (inRoot ? c.rename(1, 'f', dst, 'g') : c.rename(dst, 'g', 1, 'f'));
      renames++;
    }
  })();
  try {
    for (let i = 0; i < 8; i++) {
      const names = await dumpedNames(ms, f.ino, 2000);
      assert.equal(names.length, 1, `dump ${i}: exactly one name of the file: ${names.join(', ')}`);
      assert.ok([`1/f`, `${dst}/g`].includes(names[0]!), names[0]);
    }
    const before = renames;
    while (renames < before + 2) await new Promise((r) => setTimeout(r, 10));
  } finally {
    stop = true;
    await writer;
    await c.close();
    await ms.close();
  }
});
