// Raft benchmarks: in-process hosts over real gRPC on loopback with the level store.
// Prints one JSON line per case.
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { startGrpcServer, type RunningServer } from '../../common/grpc.js';
import { RaftHost } from '../runtime/host.js';
import type { RaftGroup } from '../runtime/api.js';
import { KvStateMachine, putCommand } from './kv-state-machine.js';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function cluster(dir: string, groups: number): Promise<{ leaders: RaftGroup[]; close(): Promise<void> }> {
  const addrs = [await freePort(), await freePort(), await freePort()].map((p) => `127.0.0.1:${p}`);
  const hosts: RaftHost[] = [];
  const servers: RunningServer[] = [];
  const all: RaftGroup[][] = [];
  for (let i = 0; i < 3; i++) {
    const host = await RaftHost.open({ dataDir: join(dir, `n${i}`), selfAddress: addrs[i]!, tickMs: 50, electionTicks: 10, snapshotThreshold: 20_000 });
    hosts.push(host);
    servers.push(await startGrpcServer(addrs[i]!, [host.grpcService()]));
    const gs: RaftGroup[] = [];
    for (let g = 0; g < groups; g++) gs.push(await host.createGroup(`g${g}`, { peers: addrs, stateMachine: await KvStateMachine.open() }));
    all.push(gs);
  }
  const leaders: RaftGroup[] = [];
  for (let g = 0; g < groups; g++) {
    for (;;) {
      const l = all.map((gs) => gs[g]!).find((x) => x.isLeader());
      if (l) {
        leaders.push(l);
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  return {
    leaders,
    close: async () => {
      for (const h of hosts) await h.close();
      for (const s of servers) await s.close();
    },
  };
}

async function runCase(name: string, groups: number, concurrency: number, durationMs: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'raft-bench-'));
  const c = await cluster(dir, groups);
  const latencies: number[] = [];
  let commits = 0;
  const until = Date.now() + durationMs;
  const worker = async (w: number) => {
    const g = c.leaders[w % groups]!;
    let i = 0;
    while (Date.now() < until) {
      const t0 = performance.now();
      await g.propose(putCommand(`k${w}-${i % 100}`, `v${i}`));
      latencies.push(performance.now() - t0);
      commits++;
      i++;
    }
  };
  const t0 = Date.now();
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  const secs = (Date.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const q = (p: number) => Math.round((latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0) * 100) / 100;
  process.stdout.write(`${JSON.stringify({ bench: 'raft', case: name, groups, concurrency, commits_per_s: Math.round(commits / secs), p50_ms: q(0.5), p99_ms: q(0.99) })}\n`);
  await c.close();
  rmSync(dir, { recursive: true, force: true });
}

/** RAFT_BENCH_CASES=a,b runs only those cases (a quicker loop while profiling). */
const wanted = (name: string): boolean => {
  const only = process.env.RAFT_BENCH_CASES;
  return !only || only.split(',').includes(name);
};

export async function benchRaft(): Promise<void> {
  if (wanted('inproc-1group')) await runCase('inproc-1group', 1, 256, 5000);
  if (wanted('inproc-32groups')) await runCase('inproc-32groups', 32, 512, 5000);
  await benchRaftProcesses();
}

interface LoadResult {
  commits: number;
  secs: number;
  p50_ms: number;
  p99_ms: number;
  lat?: number[];
}

/**
 * 3 daemon processes (dist/raft/bench/kv-daemon.js) over gRPC hosting `groups` groups; `run`
 * drives load inside the leaders over HTTP. RAFT_BENCH_PROF=<dir> writes a CPU profile per
 * daemon there (the daemons then stop with SIGTERM so the profile is flushed).
 */
async function withDaemons(groups: number, sm: 'level' | 'memory', run: (daemons: Array<{ port: number; leading: number }>) => Promise<void>): Promise<void> {
  const { spawn } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const daemon = join(fileURLToPath(new URL('.', import.meta.url)), 'kv-daemon.js');
  const dir = mkdtempSync(join(tmpdir(), 'raft-bench-proc-'));
  const addrs = [await freePort(), await freePort(), await freePort()].map((p) => `127.0.0.1:${p}`);
  const prof = process.env.RAFT_BENCH_PROF;
  const procs = addrs.map((a, i) =>
    spawn(
      process.execPath,
      [...(prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : []), daemon, '--dir', join(dir, `n${i}`), '--self', a, '--peers', addrs.join(','), '--threshold', '20000', '--groups', String(groups), '--sm', sm],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    ),
  );
  const exited = procs.map((p) => new Promise<void>((r) => p.once('exit', () => r())));
  try {
    const ports = await Promise.all(
      procs.map(
        (p) =>
          new Promise<number>((resolve, reject) => {
            let buf = '';
            p.stdout!.on('data', (c: Buffer) => {
              buf += c.toString();
              const m = /TIERFS_READY (.*)/.exec(buf);
              if (m) resolve((JSON.parse(m[1]!) as { http: number }).http);
            });
            p.once('exit', () => reject(new Error('raft bench daemon exited before ready')));
          }),
      ),
    );
    // Every group needs a leader before the load starts.
    let daemons: Array<{ port: number; leading: number }> = [];
    for (let tries = 0; tries < 600; tries++) {
      daemons = [];
      for (const port of ports) {
        const s = (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as { leading: number };
        daemons.push({ port, leading: s.leading });
      }
      if (daemons.reduce((n, d) => n + d.leading, 0) === groups) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    if (daemons.reduce((n, d) => n + d.leading, 0) !== groups) throw new Error('not every raft group has a leader among the bench daemons');
    await run(daemons);
  } finally {
    for (const p of procs) p.kill(prof ? 'SIGTERM' : 'SIGKILL');
    await Promise.race([Promise.all(exited), new Promise((r) => setTimeout(r, 10_000))]);
    rmSync(dir, { recursive: true, force: true });
  }
}

const load = async (port: number, c: number, ms: number, lat = false): Promise<LoadResult> =>
  (await (await fetch(`http://127.0.0.1:${port}/bench?c=${c}&ms=${ms}${lat ? '&lat=1' : ''}`)).json()) as LoadResult;

/**
 * The disk's floor, measured in the same run: 4 KiB write + fdatasync, one at a time, in the
 * directory the daemons use. A commit needs at least one of these (leader and followers in
 * parallel), so on a busy shared disk the Raft figures are read against this line.
 */
function fsyncBaseline(): void {
  const dir = mkdtempSync(join(tmpdir(), 'raft-bench-fsync-'));
  const fd = openSync(join(dir, 'f'), 'w');
  const block = Buffer.alloc(4096, 7);
  const lat: number[] = [];
  const until = Date.now() + 2000;
  while (Date.now() < until) {
    const t0 = performance.now();
    writeSync(fd, block);
    fdatasyncSync(fd);
    lat.push(performance.now() - t0);
  }
  closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
  lat.sort((a, b) => a - b);
  const q = (p: number) => Math.round((lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] ?? 0) * 100) / 100;
  process.stdout.write(`${JSON.stringify({ bench: 'raft', case: 'fsync-4k', ops_per_s: Math.round(lat.length / 2), p50_ms: q(0.5), p99_ms: q(0.99) })}\n`);
}

export async function benchRaftProcesses(): Promise<void> {
  if (wanted('fsync-4k')) fsyncBaseline();
  const line = (name: string, groups: number, concurrency: number, r: LoadResult, sm = 'level') =>
    process.stdout.write(`${JSON.stringify({ bench: 'raft', case: name, groups, concurrency, sm, commits_per_s: Math.round(r.commits / r.secs), p50_ms: r.p50_ms, p99_ms: r.p99_ms })}\n`);
  if (wanted('grpc-3proc-serial') || wanted('grpc-3proc-1group')) {
    await withDaemons(1, 'level', async (daemons) => {
      const leader = daemons.find((d) => d.leading > 0)!.port;
      // One proposal at a time: the latency of one commit, nothing to batch with.
      if (wanted('grpc-3proc-serial')) line('grpc-3proc-serial', 1, 1, await load(leader, 1, 5000));
      if (wanted('grpc-3proc-1group')) line('grpc-3proc-1group', 1, 256, await load(leader, 256, 5000));
    });
  }
  if (wanted('grpc-3proc-32groups')) {
    const groups = 32;
    // The 32 state machines share one level DB per process, like the other 3-process cases
    // (durable apply); RAFT_BENCH_SM=memory keeps them in memory to measure Raft alone.
    const sm = process.env.RAFT_BENCH_SM === 'memory' ? 'memory' : 'level';
    const concurrency = 512;
    await withDaemons(groups, sm, async (daemons) => {
      // Leaders are wherever the elections put them: each daemon drives the groups it leads,
      // with its share of the concurrency, all at the same time.
      const rs = await Promise.all(daemons.filter((d) => d.leading > 0).map((d) => load(d.port, Math.round((concurrency * d.leading) / groups), 5000, true)));
      const lat = rs.flatMap((r) => r.lat ?? []).sort((a, b) => a - b);
      const q = (p: number) => Math.round((lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] ?? 0) * 100) / 100;
      const secs = Math.max(...rs.map((r) => r.secs));
      line('grpc-3proc-32groups', groups, concurrency, { commits: lat.length, secs, p50_ms: q(0.5), p99_ms: q(0.99) }, sm);
    });
  }
}
