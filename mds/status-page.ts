// The status page the MDS serves on its HTTP (metrics) port, loopback by default: the cluster at
// a glance — MDS members, metaservers, copysets, filesystems, their mounts (with the backlog
// each reports at its session refresh) and quotas — refreshing
// every two seconds from /status.json (the leader's ClusterStatus; a standby answers 503 with
// the leader's address). `tierfs dashboard` prints its URL.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HttpRoutes } from '../common/metrics.js';
import type { MdsMemberInfo } from './election.js';
import type { LeaderContext } from './leader.js';
import { clusterStatusWithQuotas } from './service.js';

export interface StatusSource {
  leader(): LeaderContext | null;
  leaderAddress(): string;
  members(): Promise<MdsMemberInfo[]>;
}

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tierfs status</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em}h2{font-size:1.05em;margin-top:1.4em}
table{border-collapse:collapse;margin:.3em 0}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}
th{background:#f2f2f2}.ONLINE,.HEALTHY,.INITED{color:#080}.UNSTABLE,.DEGRADED,.NEW{color:#a60}.OFFLINE,.UNAVAILABLE{color:#c00}
#updated{color:#666}
</style></head><body>
<h1>tierfs cluster</h1><div id="updated">loading…</div>
<h2>MDS</h2><table id="mds"></table>
<h2>Metaservers</h2><table id="metaservers"></table>
<h2>Copysets</h2><table id="copysets"></table>
<h2>Filesystems</h2><table id="filesystems"></table>
<h2>Mounts</h2><table id="mounts"></table>
<h2>Quotas</h2><table id="quotas"></table>
<script>
const esc = (v) => String(v).replace(/[&<>"]/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
const mib = (b) => (Number(b) / 1048576).toFixed(1) + ' MiB';
const ago = (ms) => ms ? ((Date.now() - Number(ms)) / 1000).toFixed(1) + ' s ago' : '-';
function table(id, head, rows) {
  document.getElementById(id).innerHTML = '<tr>' + head.map((h) => '<th>' + esc(h) + '</th>').join('') + '</tr>' +
    (rows.length ? rows.map((r) => '<tr>' + r.map((c) => typeof c === 'object' && c ? '<td class="' + esc(c.cls) + '">' + esc(c.text) + '</td>' : '<td>' + esc(c) + '</td>').join('') + '</tr>').join('') : '<tr><td colspan="' + head.length + '">none</td></tr>');
}
function render(s) {
    table('mds', ['address', 'role', 'pid'], s.mds.map((m) => [m.address, m.leader ? 'leader' : 'standby', m.pid]));
    table('metaservers', ['id', 'address', 'zone', 'state', 'copysets', 'leaders', 'last heartbeat'], s.metaservers.map((m) => [m.id, m.address, m.zone, { cls: m.state, text: m.state }, m.copyset_count, m.leader_count, ago(m.last_heartbeat_ms)]));
    table('copysets', ['copyset', 'health', 'leader', 'peers', 'epoch', 'partitions'], s.copysets.map((c) => [c.pool_id + '.' + c.copyset_id, { cls: c.health, text: c.health }, c.leader || '-', c.peers.join(', '), c.epoch, c.partition_count]));
    table('filesystems', ['id', 'name', 'status', 'bucket', 'used', 'inodes', 'trash days', 'mounts'], s.filesystems.map((f) => [f.fs_id, f.name, { cls: f.status, text: f.status }, f.s3 ? f.s3.bucket : '', mib(f.used_bytes), f.inode_count, f.trash_days || 'off', f.mounts.length]));
    const rate = (b) => mib(b) + '/s';
    table('mounts', ['filesystem', 'host', 'path', 'pid', 'version', 'staged (not in S3)', 'staged blocks', 'upload', 'S3 get', 'S3 put', 'last seen'], s.filesystems.flatMap((f) => f.mounts.map((m) => {
      const r = m.report;
      return [f.name, m.host, m.path, m.pid, r ? r.version : '-', r ? mib(r.staged_bytes) : '-', r ? r.staged_blocks : '-', r ? rate(r.upload_bytes_per_sec) : '-', r ? rate(r.s3_get_bytes_per_sec) : '-', r ? rate(r.s3_put_bytes_per_sec) : '-', ago(m.last_seen_ms)];
    })));
    const limit = (n, fmt) => Number(n) ? fmt(n) : 'none';
    const used = (u, max, fmt) => fmt(u) + (Number(max) ? ' (' + (100 * Number(u) / Number(max)).toFixed(0) + ' %)' : '');
    table('quotas', ['filesystem', 'path', 'max bytes', 'used bytes', 'max inodes', 'used inodes'], s.filesystems.flatMap((f) => f.quotas_error ? [[f.name, { cls: 'UNAVAILABLE', text: 'cannot read the quotas: ' + f.quotas_error }, '', '', '', '']] :
      (f.quotas || []).map((q) => [f.name, q.path, limit(q.max_bytes, mib), used(q.used_bytes, q.max_bytes, mib), limit(q.max_inodes, String), used(q.used_inodes, q.max_inodes, String)])));
    document.getElementById('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
}
async function refresh() {
  try {
    const r = await fetch('status.json', { cache: 'no-store' });
    const s = await r.json();
    if (!r.ok) throw new Error(s.error || r.status);
    render(s);
  } catch (err) {
    document.getElementById('updated').textContent = 'cannot reach the MDS leader: ' + err.message;
  }
}
// The status at the time the page was served: shown at once, then refreshed.
const initial = /*INITIAL*/null;
if (initial) render(initial); else refresh();
setInterval(refresh, 2000);
</script></body></html>
`;

function send(res: ServerResponse, code: number, type: string, body: string): void {
  res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' }).end(body);
}

export function statusRoutes(node: StatusSource): HttpRoutes {
  const json = (_req: IncomingMessage, res: ServerResponse): void => {
    const ctx = node.leader();
    if (!ctx) {
      send(res, 503, 'application/json', JSON.stringify({ error: `this MDS is a standby; the leader is ${node.leaderAddress() || 'unknown'}`, leader: node.leaderAddress() }));
      return;
    }
    node.members().then((members) => clusterStatusWithQuotas(ctx, members)).then(
      (status) => send(res, 200, 'application/json', JSON.stringify(status)),
      (err: unknown) => send(res, 500, 'application/json', JSON.stringify({ error: String(err) })),
    );
  };
  const page = (_req: IncomingMessage, res: ServerResponse): void => {
    const ctx = node.leader();
    const html = (initial: unknown) => PAGE.replace('/*INITIAL*/null', JSON.stringify(initial).replace(/</g, '\\u003c'));
    if (!ctx) {
      send(res, 200, 'text/html; charset=utf-8', html(null));
      return;
    }
    node.members().then((members) => clusterStatusWithQuotas(ctx, members)).then(
      (status) => send(res, 200, 'text/html; charset=utf-8', html(status)),
      () => send(res, 200, 'text/html; charset=utf-8', html(null)),
    );
  };
  return new Map([['/status.json', json], ['/status', page], ['/', page]]);
}
