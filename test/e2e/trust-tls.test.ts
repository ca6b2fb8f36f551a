// Issue 14 item 3, TLS between hosts: an MDS daemon configured with tls.cert/key/ca (and a
// cluster key) serves a CLI that has the CA's certificate and the key, and nobody else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { tempDir } from '../support/tmp.js';
import { cliPath, spawnDaemon } from '../support/process.js';
import { makePki } from '../support/pki.js';
import { freePort } from '../support/ports.js';
import { createClusterKey } from '../../common/cluster-auth.js';

const run = promisify(execFile);
const tierfs = (args: string[], cwd: string) =>
  run(process.execPath, [cliPath, ...args], { cwd, timeout: 60_000, env: { ...process.env, TIERFS_LOG_LEVEL: 'warn' } });

test('an MDS daemon with tls.* in its config: the CLI gets in with the CA\'s certificate and the key, not without the certificate', { timeout: 120_000 }, async () => {
  const tmp = tempDir('tierfs-trust-tls-');
  const pki = makePki(tmp.path);
  const keyFile = join(tmp.path, 'cluster.key');
  createClusterKey(keyFile);
  const address = `127.0.0.1:${await freePort()}`;
  const mds = await spawnDaemon(['mds', '--listen', address, '--data-dir', join(tmp.path, 'mds'),
    '--set', `clusterKeyFile=${keyFile}`, '--set', `tls.cert=${pki['server.pem']}`, '--set', `tls.key=${pki['server.key']}`, '--set', `tls.ca=${pki['ca.pem']}`]);
  try {
    const tls = ['--tls-cert', pki['client.pem']!, '--tls-key', pki['client.key']!, '--tls-ca', pki['ca.pem']!];
    const ok = await tierfs(['status', '--mds', address, '--cluster-key-file', keyFile, ...tls, '--json'], tmp.path);
    assert.match(ok.stdout, /"leader":true/);
    await assert.rejects(tierfs(['status', '--mds', address, '--cluster-key-file', keyFile, '--json'], tmp.path), (err: { stderr: string }) => /UNAVAILABLE|TIMEOUT/.test(err.stderr), 'plaintext is refused');
    await assert.rejects(tierfs(['status', '--mds', address, ...tls, '--json'], tmp.path), (err: { stderr: string }) => /PERMISSION_DENIED/.test(err.stderr), 'TLS without the key is refused');
  } finally {
    await mds.stop();
    tmp.remove();
  }
});
