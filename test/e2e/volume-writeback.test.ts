// The block client in write-back mode on real processes (MDS + 3 chunkservers over gRPC):
// writes are acknowledged once queued, reads see them before they are committed, a kill -9
// of a copyset leader while they drain loses nothing, and after flush() a fresh client (new
// attach session, nothing cached) reads every byte. Writes go out as batches (WriteChunks).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { join } from 'node:path';
import { MdsClient } from '../../mds/client.js';
import { VolumeClient } from '../../blockclient/volume-client.js';
import type { Spawned } from '../support/process.js';
import { MiB, startChunkCluster } from '../support/chunk-cluster.js';
import { tempDir } from '../support/tmp.js';

const SIZE = 8 * MiB;
const WRITERS = 8;

test('write-back: reads see queued writes, a leader killed while they drain loses none, flush makes them durable', { timeout: 180_000 }, async () => {
  const tmp = tempDir('tierfs-writeback-');
  const procs: Spawned[] = [];
  let mds: MdsClient | null = null;
  let vol: VolumeClient | null = null;
  try {
    const cluster = await startChunkCluster(tmp.path, procs);
    mds = cluster.mds;
    const servers = cluster.servers;
    await mds.createVolume('wb', SIZE);
    vol = await VolumeClient.open(mds, 'wb', { cache: 'writeback', maxDirtyBytes: 2 * MiB, deadlineMs: 60_000 });
    const v = vol;

    // The model: what the volume must hold. Each writer owns one MiB and writes it in order
    // (4 KiB blocks, 64 KiB runs, rewrites of its own blocks, and unaligned bytes), so the
    // expected content does not depend on how the writers interleave.
    const model = Buffer.alloc(SIZE);
    let ops = 0;
    let killed = false;
    const writer = async (w: number) => {
      const base = w * MiB;
      for (let i = 0; i < 120; i++) {
        const kind = i % 10;
        const len = kind === 9 ? randomInt(1, 3000) : kind < 2 ? 64 * 1024 : 4096;
        const off = base + (kind === 9 ? randomInt(0, MiB - len) : randomInt(0, (MiB - len) / 4096) * 4096);
        const data = randomBytes(len);
        await v.write(off, data);
        data.copy(model, off);
        ops++;
        // Read-your-writes, whether or not the bytes reached a chunkserver yet.
        if (i % 7 === 0) {
          const got = Buffer.alloc(len);
          await v.read(off, got);
          assert.ok(got.equals(data), `writer ${w}: read right after the write at ${off}+${len}`);
        }
        if (!killed && ops >= 300) {
          killed = true;
          const status = await mds!.clusterStatus();
          const leader = status.copysets.find((c) => c.pool.startsWith('chunk:') && c.leader)?.leader;
          const victim = servers.find((s) => s.address === leader);
          assert.ok(victim, 'a chunk copyset leader is known');
          await victim.proc.kill9();
        }
      }
    };
    await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
    assert.ok(killed, 'a leader was killed while writes were in flight');
    await v.flush();
    assert.equal(v.writes.dirtyBytes, 0);
    assert.ok(v.writes.counters.blocks > v.writes.counters.batches, `writes were batched (${v.writes.counters.blocks} blocks in ${v.writes.counters.batches} batches)`);
    const whole = Buffer.alloc(SIZE);
    await v.read(0, whole);
    assert.ok(whole.equals(model), 'the writing client reads the model after flush');
    await v.close();
    vol = null;

    // A new attach: nothing queued or cached in this process any more, so every byte comes
    // from the chunkservers (two left of three per copyset).
    const fresh = await VolumeClient.open(mds, 'wb', { deadlineMs: 60_000 });
    vol = fresh;
    const again = Buffer.alloc(SIZE);
    await fresh.read(0, again);
    for (let off = 0; off < SIZE; off += 4096) {
      assert.ok(again.subarray(off, off + 4096).equals(model.subarray(off, off + 4096)), `block at ${off} is durable`);
    }
  } finally {
    await vol?.close().catch(() => {});
    mds?.close();
    for (const p of procs.reverse()) await p.stop().catch(() => {});
    tmp.remove();
  }
});
