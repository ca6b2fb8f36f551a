// `npm run bench -- volume`: an MDS (embedded store) and 3 chunkserver processes on loopback,
// one VolumeClient in this process. Cases: 1 MiB sequential write and read, 4 KiB random
// write and read at queue depth 1 and 8, each for TIERFS_BENCH_VOLUME_S seconds (default 5).
// One JSON line per case: ops_per_s, mib_per_s, p50_ms, p99_ms. Writes are measured twice:
// `writethrough` (each write acknowledged on a Raft majority of 3 replicas) and `writeback`
// (acknowledged once queued, as `tierfs volume attach` does by default), whose time includes
// the final flush(): its figure is what reached a Raft majority, not what sits in memory.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { launchDaemon, stopPid } from '../cli/launcher.js';
import { freeLoopbackPort, waitFor } from '../cli/cluster-ops.js';
import { MdsClient } from '../mds/client.js';
import { VolumeClient } from './volume-client.js';

const MiB = 1 << 20;

async function runCase(name: string, seconds: number, qd: number, size: number, op: (i: number) => Promise<void>, end?: () => Promise<void>): Promise<void> {
  const lat: number[] = [];
  let i = 0;
  const until = Date.now() + seconds * 1000;
  const t0 = Date.now();
  await Promise.all(Array.from({ length: qd }, async () => {
    while (Date.now() < until) {
      const n = i++;
      const s = performance.now();
      await op(n);
      lat.push(performance.now() - s);
    }
  }));
  await end?.();
  const secs = (Date.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  const pct = (p: number) => Number((lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] ?? 0).toFixed(2));
  process.stdout.write(`${JSON.stringify({ suite: 'volume', case: name, qd, ops_per_s: Math.round(lat.length / secs), mib_per_s: Number(((lat.length * size) / MiB / secs).toFixed(1)), p50_ms: pct(0.5), p99_ms: pct(0.99) })}\n`);
}

export async function runVolumeBench(): Promise<void> {
  // The bench's daemons live on loopback in a private temp dir and take no cluster key.
  process.env.TIERFS_ALLOW_UNAUTHENTICATED = '1';
  const seconds = Number(process.env.TIERFS_BENCH_VOLUME_S ?? 5);
  const dir = mkdtempSync(join(tmpdir(), 'tierfs-volbench-'));
  const pids: number[] = [];
  const mdsAddr = `127.0.0.1:${await freeLoopbackPort()}`;
  try {
    pids.push((await launchDaemon('mds', ['mds', '--listen', mdsAddr, '--data-dir', join(dir, 'mds')], join(dir, 'mds.log'))).pid);
    for (let i = 1; i <= 3; i++) {
      const d = join(dir, `cs${i}`);
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, 'cs.yaml'), stringify({ dataDir: d, listen: `127.0.0.1:${await freeLoopbackPort()}`, mds: [mdsAddr], zone: `zone${i}`, hostName: `host${i}`, chunkPool: { target: 16 } }));
      pids.push((await launchDaemon(`cs${i}`, ['chunkserver', '--config', join(d, 'cs.yaml')], join(dir, `cs${i}.log`))).pid);
    }
    const mds = new MdsClient([mdsAddr]);
    await waitFor('chunkservers online', 60_000, async () => (await mds.clusterStatus()).metaservers.filter((m) => m.state === 'ONLINE').length >= 3);
    const size = 256 * MiB;
    await mds.createVolume('bench', size);
    const big = randomBytes(MiB);
    const small = randomBytes(4096);
    const blocks = size / 4096;
    const rnd = () => Math.floor(Math.random() * blocks) * 4096;
    // Fill the whole volume first (chunk files taken from the pools, whose refill then runs
    // while nothing is measured), so every case writes over and reads data, not holes.
    const vol = await VolumeClient.open(mds, 'bench', { cache: 'writeback' });
    for (let off = 0; off < size; off += MiB) await vol.write(off, big);
    await vol.close();
    const wt = await VolumeClient.open(mds, 'bench', { cache: 'writethrough' });
    await runCase('seq-write-1m writethrough', seconds, 1, MiB, (i) => wt.write((i * MiB) % size, big));
    for (const qd of [1, 8]) await runCase('rand-write-4k writethrough', seconds, qd, 4096, () => wt.write(rnd(), small));
    await wt.close();
    const wb = await VolumeClient.open(mds, 'bench', { cache: 'writeback' });
    const flush = () => wb.flush();
    await runCase('seq-write-1m writeback (+flush)', seconds, 1, MiB, (i) => wb.write((i * MiB) % size, big), flush);
    for (const qd of [1, 8]) await runCase('rand-write-4k writeback (+flush)', seconds, qd, 4096, () => wb.write(rnd(), small), flush);
    await runCase('seq-read-1m', seconds, 1, MiB, (i) => wb.read((i * MiB) % size, Buffer.allocUnsafe(MiB)));
    for (const qd of [1, 8]) await runCase('rand-read-4k', seconds, qd, 4096, () => wb.read(rnd(), Buffer.allocUnsafe(4096)));
    await wb.close();
    mds.close();
  } finally {
    for (const pid of pids.reverse()) await stopPid(pid, 5000);
    rmSync(dir, { recursive: true, force: true });
  }
}
