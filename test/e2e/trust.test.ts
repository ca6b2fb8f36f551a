// Issue 14 item 3 on a `tierfs up` cluster (with chunkservers and a cache node): no service
// answers a caller without the cluster key, nothing under the data dir is open to other users, and no secret shows in argv or
// in a log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync, readdirSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadProto, unary } from '../../common/grpc.js';
import { TierfsError } from '../../common/status.js';
import { tempDir } from '../support/tmp.js';
import { cliPath } from '../support/process.js';
import { ensureUnmounted } from '../../cli/cluster-ops.js';
import type { ClusterState } from '../../cli/cluster-state.js';

const run = promisify(execFile);
const tierfs = (args: string[], cwd?: string, timeout = 240_000) =>
  run(process.execPath, [cliPath, ...args], { cwd, timeout, maxBuffer: 16 << 20, env: { ...process.env, TIERFS_LOG_LEVEL: 'info' } });

type Ctor = new (address: string, creds: grpc.ChannelCredentials, options?: grpc.ClientOptions) => grpc.Client;
function service(file: string, pkg: string, name: string): Ctor {
  const root = loadProto<Record<string, Record<string, Record<string, Ctor>>>>(file);
  return root.tierfs![pkg]![name]!;
}

/** One unary call per service, sending `key` as the cluster key (or none). */
async function callAs(key: string | null, ctor: Ctor, address: string, method: string): Promise<unknown> {
  const interceptor: grpc.Interceptor = (options, next) =>
    new grpc.InterceptingCall(next(options), {
      start(md, listener, go) {
        if (key !== null) md.set('x-tierfs-cluster-key', key);
        go(md, listener);
      },
    });
  const client = new ctor(address, grpc.credentials.createInsecure(), { interceptors: [interceptor] });
  try {
    return await unary(client, method, {}, 5000);
  } finally {
    client.close();
  }
}

/** Every path under `dir` whose mode lets group or others in (sockets and symlinks aside). */
function openToOthers(dir: string): string[] {
  const found: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = lstatSync(p);
    if (st.isSymbolicLink() || st.isSocket()) continue;
    if ((st.mode & 0o077) !== 0) found.push(`${p} ${(st.mode & 0o777).toString(8)}`);
    if (st.isDirectory()) found.push(...openToOthers(p));
  }
  return found;
}

test('tierfs up: every service refuses callers without the key; the data dir is private; no secret in argv or logs', { timeout: 400_000 }, async () => {
  const tmp = tempDir('tierfs-trust-');
  const dataDir = join(tmp.path, 'data');
  const mnt = join(tmp.path, 'mnt');
  try {
    await tierfs(['up', '--data-dir', dataDir, '--mount', mnt, '--cache-size', '256', '--chunkservers', '3', '--cache-nodes', '1']);
    const state = JSON.parse(readFileSync(join(dataDir, 'cluster.json'), 'utf8')) as ClusterState;
    const key = readFileSync(join(dataDir, 'cluster.key'), 'utf8').trim();
    const mds = state.mdsAddresses[0]!;
    const ms = state.metaservers[0]!;
    const cs = state.chunkservers![0]!;
    const cn = state.cacheNodes![0]!;

    const calls: Array<[string, Ctor, string, string]> = [
      ['MdsService', service('mds.proto', 'mds', 'MdsService'), mds, 'GetFsInfo'],
      ['MdsService', service('mds.proto', 'mds', 'MdsService'), mds, 'DeleteFs'],
      ['HeartbeatService', service('heartbeat.proto', 'heartbeat', 'HeartbeatService'), mds, 'RegisterMetaServer'],
      ['Health (mds)', service('common.proto', 'common', 'Health'), mds, 'Ping'],
      ['MetaServerService', service('metaserver.proto', 'metaserver', 'MetaServerService'), ms, 'GetInode'],
      ['CopysetService', service('copyset.proto', 'copyset', 'CopysetService'), ms, 'ListCopysets'],
      ['CopysetService', service('copyset.proto', 'copyset', 'CopysetService'), ms, 'DeleteCopyset'],
      ['RaftTransport', service('raft.proto', 'raft', 'RaftTransport'), ms, 'Send'],
      ['Health (metaserver)', service('common.proto', 'common', 'Health'), ms, 'Ping'],
      ['ChunkService', service('chunk.proto', 'chunk', 'ChunkService'), cs, 'ReadChunk'],
      ['ChunkService', service('chunk.proto', 'chunk', 'ChunkService'), cs, 'DeleteChunk'],
      ['CopysetService (chunkserver)', service('copyset.proto', 'copyset', 'CopysetService'), cs, 'DeleteCopyset'],
      ['RaftTransport (chunkserver)', service('raft.proto', 'raft', 'RaftTransport'), cs, 'Send'],
      ['CacheNodeService', service('cachenode.proto', 'cachenode', 'CacheNodeService'), cn, 'GetBlock'],
      ['CacheNodeService', service('cachenode.proto', 'cachenode', 'CacheNodeService'), cn, 'EvictBlocks'],
    ];
    for (const [what, ctor, address, method] of calls) {
      for (const given of [null, `${key.slice(0, -1)}${key.endsWith('0') ? '1' : '0'}`]) {
        await assert.rejects(callAs(given, ctor, address, method), (err: unknown) => err instanceof TierfsError && err.code === 'PERMISSION_DENIED', `${what}.${method} with ${given === null ? 'no' : 'a wrong'} key`);
      }
    }
    // The key is what opens the door: the same calls with it are answered.
    const listed = (await callAs(key, service('copyset.proto', 'copyset', 'CopysetService'), ms, 'ListCopysets')) as { copysets: unknown[] };
    assert.ok(listed.copysets.length > 0);
    const info = (await callAs(key, service('mds.proto', 'mds', 'MdsService'), mds, 'GetFsInfo')) as { status: { code: string } };
    assert.ok(info.status, 'GetFsInfo answered');
    // The CLI finds the key in the data dir, as it finds the cluster, or is given it.
    assert.match((await tierfs(['status', '--data-dir', dataDir, '--json'])).stdout, /"leader":true/);
    assert.match((await tierfs(['fs', 'info', 'default', '--mds', mds, '--cluster-key-file', join(dataDir, 'cluster.key'), '--json'])).stdout, /"name":"default"/);
    await assert.rejects(tierfs(['fs', 'info', 'default', '--mds', mds], tmp.path), (err: { stderr: string }) => /PERMISSION_DENIED/.test(err.stderr));

    assert.deepEqual(openToOthers(dataDir), [], 'nothing under the data dir is open to group or others');
    assert.equal(lstatSync(dataDir).mode & 0o777, 0o700);
    assert.equal(lstatSync(join(dataDir, 'cluster.key')).mode & 0o777, 0o600);

    for (const p of state.processes) {
      const argv = readFileSync(`/proc/${p.pid}/cmdline`, 'utf8');
      assert.ok(!argv.includes(key), `${p.name}: the cluster key is not in argv`);
      assert.ok(!argv.includes(state.s3.secretKey), `${p.name}: the S3 secret is not in argv`);
    }
    const logs = readdirSync(join(dataDir, 'logs')).map((f) => readFileSync(join(dataDir, 'logs', f), 'utf8')).join('\n');
    assert.ok(!logs.includes(key), 'the key is in no log');
    const refusals = (log: string) => readFileSync(join(dataDir, 'logs', `${log}.log`), 'utf8').split('\n').filter((l) => l.includes('refused a call without the cluster key'));
    assert.equal(refusals('mds1').length, 1, 'the MDS logged this peer once');
    assert.equal(refusals('metaserver1').length, 1, 'the metaserver logged this peer once');
  } finally {
    await tierfs(['down', '--data-dir', dataDir]).catch(() => {});
    await ensureUnmounted(mnt).catch(() => {});
    tmp.remove();
  }
});
