import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, ConfigError, z, hostPort, addressList } from '../../common/config.js';
import { tempDir } from '../support/tmp.js';

const schema = z.object({
  listen: hostPort.default('127.0.0.1:0'),
  mds: addressList,
  cache: z.object({ sizeMiB: z.number().int().positive().default(1024), dir: z.string().default('/tmp/c') }).prefault({}),
});

test('file, then flags, then --set, with defaults filled in', () => {
  const tmp = tempDir();
  try {
    const file = join(tmp.path, 'c.yaml');
    writeFileSync(file, 'mds: 127.0.0.1:1,127.0.0.1:2\ncache:\n  sizeMiB: 10\n');
    const cfg = loadConfig(schema, { file, flags: { listen: '127.0.0.1:7000' }, sets: ['cache.sizeMiB=512'] });
    assert.deepEqual(cfg, { listen: '127.0.0.1:7000', mds: ['127.0.0.1:1', '127.0.0.1:2'], cache: { sizeMiB: 512, dir: '/tmp/c' } });
  } finally {
    tmp.remove();
  }
});

test('a bad value names the key, the value and the reason', () => {
  assert.throws(
    () => loadConfig(schema, { sets: ['mds=127.0.0.1:1', 'cache.sizeMiB=-3'] }),
    (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.startsWith('cache.sizeMiB = -3:')),
  );
  assert.throws(
    () => loadConfig(schema, { sets: ['mds=nohostport'] }),
    (err: unknown) => err instanceof ConfigError && /mds/.test(err.message) && /host:port/.test(err.message),
  );
});

test('a missing or malformed file is a ConfigError, not a crash', () => {
  assert.throws(() => loadConfig(schema, { file: '/nonexistent/x.yaml' }), (e: unknown) => e instanceof ConfigError && /ENOENT/.test(e.message));
  const tmp = tempDir();
  try {
    const file = join(tmp.path, 'bad.yaml');
    writeFileSync(file, 'a: [unclosed\n');
    assert.throws(() => loadConfig(schema, { file }), (e: unknown) => e instanceof ConfigError && /not valid YAML/.test(e.message));
  } finally {
    tmp.remove();
  }
});
