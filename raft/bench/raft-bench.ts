// Raft benchmarks: in-process hosts over real gRPC on loopback with the level store.
// Prints one JSON line per case.
import { mkdtempSync, rmSync } from 'node:fs';
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

export async function benchRaft(): Promise<void> {
  await runCase('inproc-1group', 1, 256, 5000);
  await runCase('inproc-32groups', 32, 512, 5000);
  await benchRaftProcesses();
}

/** 3 daemon processes (dist/raft/bench/kv-daemon.js) over gRPC; load runs inside the leader. */
export async function benchRaftProcesses(): Promise<void> {
  const { spawn } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const daemon = join(fileURLToPath(new URL('.', import.meta.url)), 'kv-daemon.js');
  const dir = mkdtempSync(join(tmpdir(), 'raft-bench-proc-'));
  const addrs = [await freePort(), await freePort(), await freePort()].map((p) => `127.0.0.1:${p}`);
  const procs = addrs.map((a, i) => spawn(process.execPath, [daemon, '--dir', join(dir, `n${i}`), '--self', a, '--peers', addrs.join(','), '--threshold', '20000'], { stdio: ['ignore', 'pipe', 'ignore'] }));
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
    let leaderPort = 0;
    for (let tries = 0; tries < 300 && !leaderPort; tries++) {
      for (const port of ports) {
        const s = (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as { isLeader: boolean };
        if (s.isLeader) leaderPort = port;
      }
      if (!leaderPort) await new Promise((r) => setTimeout(r, 100));
    }
    if (!leaderPort) throw new Error('no raft leader among the bench daemons');
    const r = (await (await fetch(`http://127.0.0.1:${leaderPort}/bench?c=256&ms=5000`)).json()) as { commits: number; secs: number; p50_ms: number; p99_ms: number };
    process.stdout.write(`${JSON.stringify({ bench: 'raft', case: 'grpc-3proc-1group', groups: 1, concurrency: 256, commits_per_s: Math.round(r.commits / r.secs), p50_ms: r.p50_ms, p99_ms: r.p99_ms })}\n`);
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}
