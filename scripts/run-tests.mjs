// Runs every compiled test under dist/test with node's test runner, one file at a time
// (the machine has 2 cores and e2e tests start many processes), and prints its summary.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, dirname, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const base = join(root, 'dist', 'test');
const filters = process.argv.slice(2);
const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.js')) files.push(p);
  }
})(base);
const selected = filters.length ? files.filter((f) => filters.some((x) => relative(root, f).includes(x))) : files;
if (selected.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
const concurrency = process.env.TIERFS_TEST_CONCURRENCY ?? '1';
const res = spawnSync(
  process.execPath,
  ['--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', '--test-timeout=600000', ...selected],
  { stdio: 'inherit', cwd: root, env: { ...process.env, TIERFS_LOG_LEVEL: process.env.TIERFS_LOG_LEVEL ?? 'warn' } },
);
process.exit(res.status ?? 1);
