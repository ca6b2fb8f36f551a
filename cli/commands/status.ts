// `tierfs status`: the cluster at a glance — MDS leader and standbys, metaservers, copysets,
// filesystems, their mounts (version, staged backlog, upload and S3 rates from each mount's
// last report) and quotas. Tables for people, --json for scripts.
import type { Command } from 'commander';
import Table from 'cli-table3';
import { resolve } from 'node:path';
import { MdsClient } from '../../mds/client.js';
import type { FsQuota__Output as FsQuota } from '../../proto/gen/tierfs/mds/FsQuota.js';
import { loadState } from '../cluster-state.js';
import { isAlive } from '../launcher.js';
import { TierfsError, StatusCode } from '../../common/status.js';
import { action } from '../errors.js';

function table(head: string[], rows: Array<Array<string | number>>): string {
  const t = new Table({ head, style: { head: [], border: [] } });
  for (const r of rows) t.push(r.map(String));
  return t.toString();
}

export function register(program: Command): void {
  program
    .command('status')
    .description('show the cluster: MDS, metaservers, copysets, filesystems, mounts with their backlog, quotas, cache nodes')
    .option('--data-dir <dir>', 'the data dir of a cluster started by tierfs up', '.tierfs')
    .option('--mds <addrs>', 'MDS addresses (instead of --data-dir)')
    .option('--json', 'one JSON document for scripts')
    .action(
      action(async (opts: { dataDir: string; mds?: string; json?: boolean }) => {
        const state = opts.mds ? null : loadState(resolve(opts.dataDir));
        const addresses = opts.mds ? opts.mds.split(',') : (state?.mdsAddresses ?? []);
        if (addresses.length === 0) throw new TierfsError(StatusCode.INVALID_ARGUMENT, `no cluster in ${resolve(opts.dataDir)}; give --mds ADDRS`);
        const local = (state?.processes ?? []).map((p) => ({ ...p, alive: isAlive(p.pid) }));
        const mds = new MdsClient(addresses, { deadlineMs: 5000 });
        let cluster;
        try {
          cluster = await mds.clusterStatus();
        } finally {
          mds.close();
        }
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ processes: local, ...cluster, status: undefined })}\n`);
          return;
        }
        const pidOf = (address: string) => local.find((p) => p.address === address);
        const out: string[] = [];
        out.push('MDS');
        out.push(table(['address', 'role', 'pid'], cluster.mds.map((m) => [m.address, m.leader ? 'leader' : 'standby', m.pid || pidOf(m.address)?.pid || ''])));
        for (const [title, kind] of [['Metaservers', 'metaserver'], ['Chunkservers', 'chunkserver']] as const) {
          const servers = cluster.metaservers.filter((m) => (m.kind || 'metaserver') === kind);
          if (kind === 'chunkserver' && servers.length === 0) continue;
          out.push(title);
          out.push(
            table(
              ['id', 'address', 'zone', 'state', 'copysets', 'leaders', 'pid'],
              servers.map((m) => [m.id, m.address, m.zone, m.state, m.copyset_count, m.leader_count, pidOf(m.address)?.pid ?? '']),
            ),
          );
        }
        out.push('Copysets');
        out.push(table(['copyset', 'pool', 'peers', 'leader', 'health', 'partitions'], cluster.copysets.map((c) => [`${c.pool_id}.${c.copyset_id}`, c.pool, c.peers.join(' '), c.leader, c.health, c.partition_count])));
        out.push('Filesystems');
        out.push(table(['name', 'id', 'status', 'bucket', 'mounts'], cluster.filesystems.map((f) => [f.name, f.fs_id, f.status, f.s3?.bucket ?? '', f.mounts.length])));
        const mib = (b: number) => `${(Number(b) / 2 ** 20).toFixed(1)} MiB`;
        const mounts = cluster.filesystems.flatMap((f) => f.mounts.map((m) => ({ fs: f.name, ...m })));
        if (mounts.length > 0) {
          out.push('Mounts');
          out.push(
            table(
              ['filesystem', 'host', 'path', 'pid', 'version', 'staged (not in S3)', 'upload/s', 'S3 get/s', 'S3 put/s', 'last seen'],
              mounts.map((m) => {
                const r = m.report;
                const seen = m.last_seen_ms ? `${((Date.now() - Number(m.last_seen_ms)) / 1000).toFixed(0)} s ago` : '-';
                return [m.fs, m.host, m.path, m.pid, r?.version ?? '-', r ? `${mib(r.staged_bytes)} (${r.staged_blocks} blocks)` : '-', r ? mib(r.upload_bytes_per_sec) : '-', r ? mib(r.s3_get_bytes_per_sec) : '-', r ? mib(r.s3_put_bytes_per_sec) : '-', seen];
              }),
            ),
          );
        }
        const quotas = cluster.filesystems.flatMap((f): Array<{ fs: string; error: string } | { fs: string; q: FsQuota }> =>
          f.quotas_error ? [{ fs: f.name, error: f.quotas_error }] : f.quotas.map((q) => ({ fs: f.name, q })),
        );
        if (quotas.length > 0) {
          const limit = (n: number, fmt: (n: number) => string) => (Number(n) ? fmt(n) : 'none');
          out.push('Quotas');
          out.push(
            table(
              ['filesystem', 'path', 'bytes used / max', 'inodes used / max'],
              quotas.map((x) => ('error' in x ? [x.fs, `cannot read the quotas: ${x.error}`, '', ''] : [x.fs, x.q.path, `${mib(x.q.used_bytes)} / ${limit(x.q.max_bytes, mib)}`, `${x.q.used_inodes} / ${limit(x.q.max_inodes, String)}`])),
            ),
          );
        }
        if (cluster.volumes.length) {
          out.push('Volumes');
          out.push(table(['name', 'id', 'status', 'size', 'segments', 'attached'], cluster.volumes.map((v) => [v.name, v.id, v.status, v.size, v.allocated_segments, v.opens.map((o) => `${o.host} (pid ${o.pid})`).join('\n')])));
        }
        const cacheNodes = cluster.cache_nodes ?? [];
        if (cacheNodes.length > 0) {
          out.push('Cache nodes');
          out.push(
            table(
              ['id', 'address', 'state', 'used / capacity', 'blocks', 'hit ratio', 'pid'],
              cacheNodes.map((n) => [n.id, n.address, n.state, `${mib(Number(n.used_bytes))} / ${mib(Number(n.capacity_bytes))}`, Number(n.blocks), `${(n.hit_ratio * 100).toFixed(1)} %`, pidOf(n.address)?.pid ?? '']),
            ),
          );
        }
        if (cluster.operators.length) out.push(`Operators in flight:\n  ${cluster.operators.join('\n  ')}`);
        const dead = local.filter((p) => !p.alive);
        if (dead.length) out.push(`Not running: ${dead.map((p) => `${p.name} (pid ${p.pid}, log ${p.log})`).join(', ')}`);
        process.stdout.write(`${out.join('\n')}\n`);
      }),
    );
}
