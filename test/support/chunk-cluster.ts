// A block-store cluster for tests: an MDS (fast health checks and scheduler, 1 MiB chunks,
// 8 MiB segments) and chunkserver processes on loopback, as real daemons over gRPC.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { spawnDaemon, type Spawned } from './process.js';
import { freePort } from './ports.js';
import { MdsClient } from '../../mds/client.js';
import { waitFor } from '../../cli/cluster-ops.js';

export const MiB = 1 << 20;

/** MDS flags: offline after 3 s, the scheduler every 300 ms, small chunks and segments. */
export const FAST_MDS = [
  '--set', 'health.unstableAfterMs=1000', '--set', 'health.offlineAfterMs=3000', '--set', 'health.checkIntervalMs=200',
  '--set', 'scheduler.intervalMs=300', '--set', 'scheduler.balanceCopysets=false', '--set', 'scheduler.balanceLeaders=false',
  '--set', 'volumes.chunkSize=1048576', '--set', 'volumes.segmentSize=8388608', '--set', 'volumes.checkIntervalMs=300',
];

export interface TestChunkServer {
  proc: Spawned;
  address: string;
  dir: string;
}

/** Chunkserver `i` (zone `zone<i>`) under `dir`, registered with `mds`. */
export async function startChunkServer(dir: string, i: number, mds: string[]): Promise<TestChunkServer> {
  const d = join(dir, `cs${i}`);
  mkdirSync(d, { recursive: true });
  const address = `127.0.0.1:${await freePort()}`;
  writeFileSync(join(d, 'cs.yaml'), stringify({
    dataDir: d, listen: address, mds, zone: `zone${i}`, hostName: `host${i}`, heartbeatIntervalMs: 300,
    chunkSize: MiB, chunkPool: { target: 2 }, raft: { snapshotThreshold: 50 },
  }));
  const proc = await spawnDaemon(['chunkserver', '--config', join(d, 'cs.yaml')], { logFile: join(d, 'log') });
  return { proc, address, dir: d };
}

/** An MDS and three chunkservers (zones 1-3) under `dir`; resolves once all are online. */
export async function startChunkCluster(dir: string, procs: Spawned[]): Promise<{ mdsAddr: string; mds: MdsClient; servers: TestChunkServer[] }> {
  const mdsAddr = `127.0.0.1:${await freePort()}`;
  procs.push(await spawnDaemon(['mds', '--listen', mdsAddr, '--data-dir', join(dir, 'mds'), ...FAST_MDS], { logFile: join(dir, 'mds.log') }));
  const servers: TestChunkServer[] = [];
  for (let i = 1; i <= 3; i++) {
    const s = await startChunkServer(dir, i, [mdsAddr]);
    servers.push(s);
    procs.push(s.proc);
  }
  const mds = new MdsClient([mdsAddr]);
  await waitFor('3 chunkservers online', 60_000, async () => (await mds.clusterStatus()).metaservers.filter((m) => m.state === 'ONLINE').length === 3);
  return { mdsAddr, mds, servers };
}
