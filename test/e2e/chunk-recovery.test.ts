// Chunk copysets under failure, on real processes: MDS + chunkservers over gRPC, a
// VolumeClient in this process.
// 1. Kill -9 of a copyset leader while writes are in flight: every acknowledged write reads
//    back; then the MDS scheduler replaces the dead replica with a 4th chunkserver, which
//    catches up (its chunk files equal the survivors'), and the client, whose cached epoch is
//    now stale, is redirected and keeps reading the same data.
// 2. Segment allocation across an MDS failover (two MDS on a real etcd): a segment allocated
//    by the first leader is the same at the second, and new segments are allocated there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MdsClient } from '../../mds/client.js';
import { VolumeClient } from '../../blockclient/volume-client.js';
import { spawnDaemon, type Spawned } from '../support/process.js';
import { FAST_MDS, MiB, startChunkCluster, startChunkServer as chunkserver } from '../support/chunk-cluster.js';
import { freePort } from '../support/ports.js';
import { startEtcd } from '../support/etcd.js';
import { tempDir } from '../support/tmp.js';
import { waitFor } from '../../cli/cluster-ops.js';
import { startNbdServer } from '../../blockclient/nbd-server.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

test('kill -9 of a chunk copyset leader loses no acknowledged write; the scheduler replaces the replica and it catches up', { timeout: 240_000 }, async () => {
  const tmp = tempDir('tierfs-chunkrec-');
  const procs: Spawned[] = [];
  let mds: MdsClient | null = null;
  let vol: VolumeClient | null = null;
  try {
    const cluster = await startChunkCluster(tmp.path, procs);
    const { mdsAddr, servers } = cluster;
    mds = cluster.mds;
    await mds.createVolume('v', 8 * MiB);
    vol = await VolumeClient.open(mds, 'v', { deadlineMs: 60_000 });
    const v = vol;

    // Writes of 64 KiB in flight, 8 at a time, over all 8 chunks (so over all 3 copysets).
    const acked = new Map<number, Buffer>();
    let next = 0;
    const writer = async () => {
      while (next < 128) {
        const off = (next++ % 128) * 64 * 1024;
        const data = randomBytes(64 * 1024);
        await v.write(off, data);
        acked.set(off, data);
      }
    };
    const writers = Array.from({ length: 8 }, writer);
    // Kill the leader of the copyset holding chunk 0 once writes are flowing.
    await waitFor('some writes acknowledged', 30_000, async () => acked.size >= 16);
    const status = await mds.clusterStatus();
    const leader = status.copysets.find((c) => c.pool.startsWith('chunk:') && c.leader)?.leader;
    const victim = servers.find((s) => s.address === leader)!;
    assert.ok(victim, 'a chunk copyset leader is known');
    await victim.proc.kill9();
    await Promise.all(writers);
    assert.equal(acked.size, 128);
    for (const [off, data] of acked) {
      const got = Buffer.alloc(data.length);
      await v.read(off, got);
      assert.ok(got.equals(data), `acknowledged write at ${off} reads back`);
    }

    // A 4th chunkserver: the scheduler replaces the dead replica in every copyset with it.
    const fourth = await chunkserver(tmp.path, 4, [mdsAddr]);
    procs.push(fourth.proc);
    await waitFor('dead replica replaced everywhere', 120_000, async () => {
      const cs = (await mds!.clusterStatus()).copysets.filter((c) => c.pool.startsWith('chunk:'));
      return cs.every((c) => !c.peers.includes(victim.address) && c.peers.length === 3);
    });
    // The newcomer caught up: its chunk files hold what the survivors hold.
    const survivor = servers.find((s) => s !== victim)!;
    await waitFor('newcomer chunk files equal the survivor\'s', 60_000, async () => {
      const info = await mds!.getVolume('v');
      for (const name of info.copysets) {
        const [pool, cs] = name.split('.');
        const dirOf = (d: string) => join(d, 'copysets', `${pool}-${cs}`);
        for (let id = 1; id <= 64; id++) {
          let a: Buffer | null = null;
          try {
            a = readFileSync(join(dirOf(survivor.dir), `chunk_${id}`));
          } catch {
            continue;
          }
          if (!a.equals(readFileSync(join(dirOf(fourth.dir), `chunk_${id}`)))) return false;
        }
      }
      return true;
    });
    // The client's cached epochs are stale now: it is redirected and reads the same bytes.
    for (const [off, data] of acked) {
      const got = Buffer.alloc(data.length);
      await v.read(off, got);
      assert.ok(got.equals(data), `write at ${off} after the replacement`);
    }
    assert.ok(v.chunks.counters.redirects + v.chunks.counters.retries + v.chunks.counters.relocations > 0);

    // The same volume over NBD, read whole by libnbd's nbdcopy.
    const nbd = await startNbdServer(join(tmp.path, 'nbd.sock'), v, 'v');
    try {
      await promisify(execFile)('nbdcopy', [`nbd+unix:///v?socket=${nbd.path}`, join(tmp.path, 'v.img')], { timeout: 60_000 });
    } finally {
      await nbd.close();
    }
    const img = readFileSync(join(tmp.path, 'v.img'));
    assert.equal(img.length, 8 * MiB);
    for (const [off, data] of acked) assert.ok(img.subarray(off, off + data.length).equals(data), `NBD read at ${off}`);
  } finally {
    await vol?.close().catch(() => {});
    mds?.close();
    for (const p of procs.reverse()) await p.stop().catch(() => {});
    tmp.remove();
  }
});

test('segments allocated before an MDS failover are the same after it; new ones are allocated by the new leader', { timeout: 180_000 }, async () => {
  const tmp = tempDir('tierfs-segfail-');
  const etcd = await startEtcd();
  const procs: Spawned[] = [];
  let mds: MdsClient | null = null;
  try {
    const addrs = [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`];
    const mdsProcs: Spawned[] = [];
    for (const [i, a] of addrs.entries()) {
      mdsProcs.push(await spawnDaemon(['mds', '--listen', a, '--etcd', etcd.endpoint, '--data-dir', join(tmp.path, `mds${i}`), ...FAST_MDS, '--set', 'etcd.sessionTtlS=2', '--set', 'volumes.recycleRetentionMs=1500'], { logFile: join(tmp.path, `mds${i}.log`) }));
    }
    procs.push(...mdsProcs);
    for (let i = 1; i <= 3; i++) procs.push((await chunkserver(tmp.path, i, addrs)).proc);
    mds = new MdsClient(addrs, { deadlineMs: 30_000 });
    await waitFor('3 chunkservers online', 60_000, async () => (await mds!.clusterStatus()).metaservers.filter((m) => m.state === 'ONLINE').length === 3);
    const info = await mds.createVolume('f', 32 * MiB);
    const seg0 = await mds.getSegment(info.id, 0, true);
    assert.equal(seg0?.length, 8);
    assert.equal(await mds.getSegment(info.id, 1, false), null, 'segment 1 not allocated yet');

    const status = await mds.clusterStatus();
    const leaderAddr = status.mds.find((m) => m.leader)!.address;
    await mdsProcs[addrs.indexOf(leaderAddr)]!.kill9();
    await waitFor('the standby leads', 60_000, async () => (await mds!.clusterStatus()).mds.some((m) => m.leader && m.address !== leaderAddr));

    assert.deepEqual(await mds.getSegment(info.id, 0, false), seg0, 'segment 0 unchanged after the failover');
    const seg1 = await mds.getSegment(info.id, 1, true);
    assert.equal(seg1?.length, 8);
    const ids0 = new Set(seg0!.map((c) => Number(c.chunk_id)));
    assert.ok(seg1!.every((c) => !ids0.has(Number(c.chunk_id))), 'chunk ids never repeat across leaders');
    assert.equal((await mds.getVolume('f')).allocated_segments, 2);

    // Clear errors, attach sessions, the recycle bin (at the new leader).
    await assert.rejects(mds.createVolume('f', 16 * MiB), /EXISTS|already exists/);
    await assert.rejects(mds.createVolume('g', 1000), /multiple of 4 KiB/);
    await assert.rejects(mds.getVolume('nope'), /does not exist/);
    const open = await mds.openVolume('f', 'h1', 1, false);
    await assert.rejects(mds.openVolume('f', 'h2', 2, false), /already attached read-write/);
    await assert.rejects(mds.deleteVolume('f'), /attached/);
    await mds.closeVolume('f', open.sessionId);
    assert.equal((await mds.deleteVolume('f')).status, 'DELETED');
    await assert.rejects(mds.createVolume('f', 16 * MiB), /recycle bin/);
    assert.equal((await mds.recoverVolume('f')).status, 'ACTIVE');
    assert.deepEqual(await mds.getSegment(info.id, 0, false), seg0, 'a recovered volume keeps its segments');
    await mds.deleteVolume('f');
    await waitFor('the recycle bin purges the volume', 30_000, async () => (await mds!.listVolumes()).every((v) => v.name !== 'f'));
    const g = await mds.createVolume('f', 16 * MiB); // the name is free again
    assert.equal((await mds.extendVolume('f', 48 * MiB)).size, 48 * MiB);
    await assert.rejects(mds.extendVolume('f', 8 * MiB), /shrinking/);
    assert.ok(g.id !== info.id, 'a new volume, not the purged one');
  } finally {
    mds?.close();
    for (const p of procs.reverse()) await p.stop().catch(() => {});
    await etcd.close();
    tmp.remove();
  }
});
