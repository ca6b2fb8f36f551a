// Runs every compiled test file under dist/test with node's test runner, one file at a
// time (the machine has 2 cores and e2e tests start many processes). A file that fails is
// run once more and reported as flaky if it then passes; the run fails only on a file that
// fails twice. Ends with the line `N passed, N failed` counting individual tests.
import { spawn } from 'node:child_process';
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

function runFile(file) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--test', '--test-reporter=spec', '--test-timeout=300000', file], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...process.env, TIERFS_LOG_LEVEL: process.env.TIERFS_LOG_LEVEL ?? 'warn' },
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      process.stdout.write(d);
    });
    child.stderr.on('data', (d) => process.stderr.write(d));
    // A whole file gets 15 minutes at most; a hung file must not hang CI.
    const timer = setTimeout(() => child.kill('SIGKILL'), 15 * 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const num = (label) => Number((out.match(new RegExp(`ℹ ${label} (\\d+)`)) ?? [])[1] ?? 0);
      resolve({ code, pass: num('pass'), fail: num('fail') + num('cancelled') });
    });
  });
}

let passed = 0;
let failed = 0;
const flaky = [];
const broken = [];
const started = Date.now();
for (const file of selected) {
  const name = relative(base, file);
  console.log(`\n▶ ${name}`);
  const t0 = Date.now();
  let r = await runFile(file);
  if (r.code !== 0) {
    console.log(`\n↻ ${name} failed (exit ${r.code}); running it once more`);
    const again = await runFile(file);
    if (again.code === 0) flaky.push(name);
    else broken.push(name);
    r = again;
  }
  passed += r.pass;
  failed += r.code === 0 ? 0 : Math.max(1, r.fail);
  console.log(`◀ ${name}: ${r.code === 0 ? 'ok' : 'FAILED'} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}
console.log(`\ntest files: ${selected.length}, in ${((Date.now() - started) / 1000).toFixed(0)} s`);
if (flaky.length) console.log(`flaky (failed once, then passed): ${flaky.join(', ')}`);
if (broken.length) console.log(`failed: ${broken.join(', ')}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(broken.length ? 1 : 0);
