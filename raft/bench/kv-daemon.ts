// A tiny Raft KV daemon for the multi-process test and bench: one group (or `--groups N`), a
// level-backed KV state machine per group, gRPC between daemons, and an HTTP control port on
// 127.0.0.1 to drive it. Run as a script (node dist/raft/bench/kv-daemon.js); never imported.
import { createServer } from 'node:http';
import { Level } from 'level';
import { parseArgs } from 'node:util';
import { startGrpcServer } from '../../common/grpc.js';
import { TierfsError } from '../../common/status.js';
import { announceReady } from '../../cli/ready.js';
import { RaftHost, type RaftGroup } from '../index.js';
import { KvStateMachine, putCommand } from './kv-state-machine.js';

const { values } = parseArgs({
  options: { dir: { type: 'string' }, self: { type: 'string' }, peers: { type: 'string' }, threshold: { type: 'string' }, groups: { type: 'string' }, sm: { type: 'string' } },
});
const dir = values.dir!;
const self = values.self!;
const host = await RaftHost.open({ dataDir: dir, selfAddress: self, tickMs: 50, electionTicks: 10, snapshotThreshold: Number(values.threshold ?? 50) });
const grpcServer = await startGrpcServer(self, [host.grpcService()]);
const existing = await host.listGroups();
// Group 0 keeps the historical names ('kv', state machine in <dir>/sm) the kill -9 test reads.
// Several groups share one state-machine DB per process, as metaservers do.
const nGroups = Number(values.groups ?? 1);
// `--sm memory` keeps the state machines in memory: the bench then measures Raft alone.
const memorySm = values.sm === 'memory';
const sharedDb = nGroups > 1 && !memorySm ? new Level<string, string>(`${dir}/sm-shared`, { keyEncoding: 'utf8', valueEncoding: 'utf8' }) : null;
const groups: RaftGroup[] = [];
const sms: KvStateMachine[] = [];
for (let i = 0; i < nGroups; i++) {
  const id = i === 0 ? 'kv' : `kv${i}`;
  const sm = memorySm
    ? await KvStateMachine.open()
    : sharedDb
      ? await KvStateMachine.open(undefined, { db: sharedDb, prefix: `${id}/` })
      : await KvStateMachine.open(`${dir}/sm`);
  const g = existing.includes(id) ? await host.openGroup(id, sm) : await host.createGroup(id, { peers: values.peers!.split(','), stateMachine: sm });
  groups.push(g);
  sms.push(sm);
}
const group = groups[0]!;
const sm = sms[0]!;

const http = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  const reply = (code: number, body: unknown) => {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const fail = (e: unknown) => reply(e instanceof TierfsError && e.code === 'NOT_LEADER' ? 409 : 500, { error: String(e) });
  if (url.pathname === '/put') {
    group.propose(putCommand(url.searchParams.get('k')!, url.searchParams.get('v')!)).then(() => reply(200, { ok: true }), fail);
  } else if (url.pathname === '/get') {
    group.readBarrier().then(() => reply(200, { value: sm.data.get(url.searchParams.get('k')!) ?? null }), fail);
  } else if (url.pathname === '/bench') {
    // Load generated inside the leader process: measures replication over gRPC, not HTTP.
    // Workers go round-robin over the groups this process leads (all of them when it leads all).
    const led = groups.filter((g) => g.isLeader());
    runLoad(led, Number(url.searchParams.get('c') ?? 256), Number(url.searchParams.get('ms') ?? 5000), url.searchParams.get('lat') === '1').then((r) => reply(200, r), fail);
  } else if (url.pathname === '/dump') {
    reply(200, { data: Object.fromEntries(sm.data), status: group.status(), restores: sm.restores });
  } else {
    reply(200, { ...group.status(), isLeader: group.isLeader(), leading: groups.filter((g) => g.isLeader()).length });
  }
});
async function runLoad(led: RaftGroup[], concurrency: number, ms: number, withLatencies: boolean): Promise<{ commits: number; secs: number; p50_ms: number; p99_ms: number; lat?: number[] }> {
  const lat: number[] = [];
  const until = Date.now() + ms;
  const t0 = Date.now();
  if (led.length > 0) {
    await Promise.all(
      Array.from({ length: concurrency }, async (_, w) => {
        const g = led[w % led.length]!;
        for (let i = 0; Date.now() < until; i++) {
          const s = performance.now();
          await g.propose(putCommand(`b${w}-${i % 64}`, `${i}`));
          lat.push(performance.now() - s);
        }
      }),
    );
  }
  lat.sort((a, b) => a - b);
  const q = (p: number) => Math.round((lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] ?? 0) * 100) / 100;
  return { commits: lat.length, secs: (Date.now() - t0) / 1000, p50_ms: q(0.5), p99_ms: q(0.99), ...(withLatencies ? { lat: lat.map((x) => Math.round(x * 1000) / 1000) } : {}) };
}

await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
const port = (http.address() as { port: number }).port;
process.on('SIGTERM', () => {
  http.close();
  void host.close().then(() => grpcServer.close()).then(() => process.exit(0));
});
announceReady({ http: port, self });
