// Daemon logs never carry secrets: createLogger redacts the S3 secret and key fields
// wherever a record nests them (it writes to stderr, so a child process is the witness).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const logModule = fileURLToPath(new URL('../../common/log.js', import.meta.url));

test('createLogger redacts secret fields at any of the first three levels', () => {
  const script = `
    const { createLogger } = await import(${JSON.stringify(logModule)});
    const log = createLogger('t');
    log.info({ fs: { s3: { secret_key: 'S1-SECRET', access_key: 'visible' } }, secretAccessKey: 'S2-SECRET', cfg: { clusterKey: 'S3-SECRET' } }, 'record');
    log.flush();`;
  const res = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, TIERFS_LOG_LEVEL: 'info' } });
  assert.equal(res.status, 0, res.stderr);
  assert.match(res.stderr, /"access_key":"visible"/);
  assert.doesNotMatch(res.stderr, /SECRET/);
  assert.equal((res.stderr.match(/\*\*\*/g) ?? []).length, 3);
});
