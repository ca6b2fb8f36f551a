// A tiny Raft KV daemon for the multi-process test: one group, a level-backed KV state machine,
// gRPC between daemons, and an HTTP control port on 127.0.0.1 for the test to drive it.
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { startGrpcServer } from '../../common/grpc.js';
import { TierfsError } from '../../common/status.js';
import { announceReady } from '../../cli/ready.js';
import { RaftHost } from '../../raft/index.js';
import { KvStateMachine, putCommand } from '../../raft/bench/kv-state-machine.js';

const { values } = parseArgs({ options: { dir: { type: 'string' }, self: { type: 'string' }, peers: { type: 'string' }, threshold: { type: 'string' } } });
const dir = values.dir!;
const self = values.self!;
const host = await RaftHost.open({ dataDir: dir, selfAddress: self, tickMs: 50, electionTicks: 10, snapshotThreshold: Number(values.threshold ?? 50) });
const grpcServer = await startGrpcServer(self, [host.grpcService()]);
const sm = await KvStateMachine.open(`${dir}/sm`);
const existing = await host.listGroups();
const group = existing.includes('kv') ? await host.openGroup('kv', sm) : await host.createGroup('kv', { peers: values.peers!.split(','), stateMachine: sm });

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
  } else if (url.pathname === '/dump') {
    reply(200, { data: Object.fromEntries(sm.data), status: group.status(), restores: sm.restores });
  } else {
    reply(200, { ...group.status(), isLeader: group.isLeader() });
  }
});
await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
const port = (http.address() as { port: number }).port;
process.on('SIGTERM', () => {
  http.close();
  void host.close().then(() => grpcServer.close()).then(() => process.exit(0));
});
announceReady({ http: port, self });
