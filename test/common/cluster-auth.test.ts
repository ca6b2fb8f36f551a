// The cluster key and TLS of common/cluster-auth.ts on a real gRPC server: callers without
// the key (or with another) are refused UNAUTHENTICATED and logged once per peer; TLS
// refuses plaintext clients and certificates of another CA.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync, writeFileSync, chmodSync } from 'node:fs';
import { makePki } from '../support/pki.js';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { CHANNEL_OPTIONS, loadProto, startGrpcServer, unary } from '../../common/grpc.js';
import { healthService, ping } from '../../common/health.js';
import {
  OPEN_AUTH, adoptDaemonClusterAuth, clientCredentials, createClusterKey, keyMatches, loadClusterAuth, serverAuthInterceptor, useClusterAuth, type ClusterAuth,
} from '../../common/cluster-auth.js';
import { TierfsError } from '../../common/status.js';
import type { ProtoGrpcType } from '../../proto/gen/common.js';
import { tempDir } from '../support/tmp.js';

const Health = () => loadProto<ProtoGrpcType>('common.proto').tierfs.common.Health;

/** A Ping from a client that sends exactly `key` (or none), bypassing this process's identity. */
async function pingWith(address: string, key: string | null, creds = grpc.credentials.createInsecure()): Promise<unknown> {
  const interceptor: grpc.Interceptor = (options, next) =>
    new grpc.InterceptingCall(next(options), {
      start(md, listener, go) {
        if (key !== null) md.set('x-tierfs-cluster-key', key);
        go(md, listener);
      },
    });
  const client = new (Health())(address, creds, { interceptors: [interceptor] });
  try {
    return await unary(client, 'Ping', {}, 3000);
  } finally {
    client.close();
  }
}

function keyAuth(dir: string, name: string): ClusterAuth {
  const file = join(dir, name);
  createClusterKey(file);
  return loadClusterAuth({ clusterKeyFile: file });
}

test('a server with a cluster key refuses calls without it or with another, and logs each peer once', async () => {
  const tmp = tempDir('tierfs-auth-');
  const lines: string[] = [];
  const log = pino({ level: 'warn' }, { write: (l: string) => void lines.push(l) });
  const auth = keyAuth(tmp.path, 'cluster.key');
  const other = keyAuth(tmp.path, 'other.key');
  useClusterAuth(auth, log);
  const srv = await startGrpcServer('127.0.0.1:0', [healthService('test')]);
  try {
    assert.equal((await ping(srv.address)).role, 'test', 'this process sends its own key');
    for (const key of [null, other.key!.toString(), `${auth.key!.toString()}x`, '']) {
      await assert.rejects(pingWith(srv.address, key), (err: unknown) => err instanceof TierfsError && err.code === 'PERMISSION_DENIED' && /refused/.test(err.message));
    }
    assert.equal(((await pingWith(srv.address, auth.key!.toString())) as { role: string }).role, 'test');
    const refusals = lines.filter((l) => l.includes('refused a call without the cluster key'));
    assert.equal(refusals.length, 1, 'one line for the one peer (127.0.0.1), not one per call');
    assert.match(refusals[0]!, /"peer":"127\.0\.0\.1"/);
    assert.ok(!lines.join('').includes(auth.key!.toString()), 'the key is never logged');
  } finally {
    useClusterAuth(OPEN_AUTH);
    await srv.close();
    tmp.remove();
  }
});

test('cluster key files: created 0600, refused when others may read them; keys compared whole', () => {
  const tmp = tempDir('tierfs-auth-');
  try {
    const file = join(tmp.path, 'k');
    createClusterKey(file);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.throws(() => createClusterKey(file), /EEXIST/, 'never overwrites a key');
    chmodSync(file, 0o640);
    assert.throws(() => loadClusterAuth({ clusterKeyFile: file }), (err: unknown) => err instanceof TierfsError && /chmod 600/.test(err.message));
    writeFileSync(join(tmp.path, 'short'), 'abc\n', { mode: 0o600 });
    assert.throws(() => loadClusterAuth({ clusterKeyFile: join(tmp.path, 'short') }), /too short/);
    const k = Buffer.from('0123456789abcdef0123');
    assert.ok(keyMatches(k, '0123456789abcdef0123'));
    assert.ok(!keyMatches(k, '0123456789abcdef012'));
    assert.ok(!keyMatches(k, undefined));
    // The interceptor is usable on its own (the chunkserver builds its server the same way).
    assert.equal(typeof serverAuthInterceptor(k), 'function');
  } finally {
    tmp.remove();
  }
});

test('a daemon without a cluster key refuses to start unless running unauthenticated was asked for', () => {
  const log = pino({ level: 'silent' });
  try {
    assert.throws(() => adoptDaemonClusterAuth({}, log, {}), (err: unknown) => err instanceof TierfsError && /clusterKeyFile/.test(err.message));
    assert.equal(adoptDaemonClusterAuth({ allowUnauthenticated: true }, log, {}).key, null);
    assert.equal(adoptDaemonClusterAuth({}, log, { TIERFS_ALLOW_UNAUTHENTICATED: '1' }).key, null);
  } finally {
    useClusterAuth(OPEN_AUTH);
  }
});

test('with TLS: a client of the cluster CA gets in; plaintext and another CA\'s certificate do not', async () => {
  const tmp = tempDir('tierfs-tls-');
  const pki = makePki(tmp.path);
  const key = keyAuth(tmp.path, 'cluster.key').key;
  const serverAuth = { key, tls: loadClusterAuth({ tls: { cert: pki['server.pem']!, key: pki['server.key']!, ca: pki['ca.pem']! } }).tls };
  const clientAuth = { key, tls: loadClusterAuth({ tls: { cert: pki['client.pem']!, key: pki['client.key']!, ca: pki['ca.pem']! } }).tls };
  const evilTls = loadClusterAuth({ tls: { cert: pki['evil.pem']!, key: pki['evil.key']!, ca: pki['ca.pem']! } }).tls;
  const srv = await startGrpcServer('127.0.0.1:0', [healthService('tls')], serverAuth);
  useClusterAuth(clientAuth);
  try {
    const client = new (Health())(srv.address, clientCredentials(), CHANNEL_OPTIONS);
    assert.equal((await unary<object, { role: string }>(client, 'Ping', {}, 5000)).role, 'tls');
    client.close();
    await assert.rejects(pingWith(srv.address, key!.toString()), (err: unknown) => err instanceof TierfsError && ['UNAVAILABLE', 'TIMEOUT'].includes(err.code), 'plaintext');
    await assert.rejects(pingWith(srv.address, key!.toString(), clientCredentials({ key, tls: evilTls })), (err: unknown) => err instanceof TierfsError && ['UNAVAILABLE', 'TIMEOUT'].includes(err.code), 'a certificate of another CA');
    await assert.rejects(pingWith(srv.address, null, clientCredentials(clientAuth)), (err: unknown) => err instanceof TierfsError && err.code === 'PERMISSION_DENIED', 'TLS alone is not the key');
  } finally {
    useClusterAuth(OPEN_AUTH);
    await srv.close();
    tmp.remove();
  }
});
