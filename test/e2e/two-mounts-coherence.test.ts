// Two (and a third, --writeback) `tierfs mount` processes of one filesystem with the default
// 30 s kernel caches, as a user runs them: close-to-open exactly (a rewrite closed on one
// mount, then opened on the other, reads right every time), atomic O_APPEND from several
// processes on both mounts (every line whole, none lost, both mounts identical), and offsets
// at and past the largest file size. Each drill prints its figures (reads checked/stale,
// bytes appended/lost) as a `drill:` line.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync, readSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FALLOC_FL_KEEP_SIZE, py, syscall } from '../support/syscalls.js';
import { startCluster, type TestCluster } from './support/cluster.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Reads a whole file through one open descriptor (open, fstat, read to EOF, close). */
function readWhole(path: string): Buffer {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const parts: Buffer[] = [];
    let got = 0;
    for (;;) {
      const buf = Buffer.alloc(Math.max(65536, size - got + 1));
      const n = readSync(fd, buf, 0, buf.length, got);
      if (n === 0) break;
      parts.push(buf.subarray(0, n));
      got += n;
    }
    const data = Buffer.concat(parts);
    assert.equal(data.length, size, `fstat says ${size} bytes, read gave ${data.length}`);
    return data;
  } finally {
    closeSync(fd);
  }
}

interface RewriteFigures {
  reads: number;
  stale: number;
  wrong: number;
}

/**
 * Rewrites `name` on the writer mount (open O_TRUNC or in place, write, close) and reads it
 * on the reader mount (open, read, close), `rounds` times. Sizes repeat on purpose: an equal
 * size (and an mtime within its resolution) must not pass for "unchanged".
 */
function rewriteDrill(
  writer: string, reader: string, name: string, rounds: number,
  opts: { inPlace?: boolean; holdOpen?: boolean; statFirstAfterMs?: number } = {},
): RewriteFigures {
  const sizes = [4096, 4096, 100_000, 1 << 20, 4096, (1 << 20) + 17, 3, 3];
  let previous = randomBytes(4096);
  writeFileSync(join(writer, name), previous);
  assert.equal(sha(readWhole(join(reader, name))), sha(previous), 'the first read');
  // A reader that keeps the file open on the reader mount (tail -f, a database): later opens
  // there must still revalidate.
  const held = opts.holdOpen ? openSync(join(reader, name), 'r') : null;
  const figures: RewriteFigures = { reads: 0, stale: 0, wrong: 0 };
  try {
    for (let i = 0; i < rounds; i++) {
      const size = opts.inPlace ? previous.length : sizes[i % sizes.length]!;
      const body = randomBytes(size);
      if (opts.inPlace) {
        const fd = openSync(join(writer, name), 'r+');
        writeSync(fd, body, 0, body.length, 0);
        closeSync(fd);
      } else {
        writeFileSync(join(writer, name), body);
      }
      if (opts.statFirstAfterMs !== undefined) {
        // The reader's attribute caches expire, then a stat refetches the attributes before
        // the open: the open must still see that the data changed (not only the size).
        sleepSync(opts.statFirstAfterMs);
        statSync(join(reader, name));
      }
      const got = readWhole(join(reader, name));
      figures.reads++;
      if (got.equals(body)) {
        previous = body;
        continue;
      }
      if (got.equals(previous)) figures.stale++;
      else figures.wrong++;
      previous = body;
    }
  } finally {
    if (held !== null) closeSync(held);
  }
  return figures;
}

/** A line: mount, process, sequence, filler, checksum of the rest; 48 bytes with the newline. */
function line(tag: string, seq: number): string {
  const head = `${tag}-${String(seq).padStart(5, '0')}-`;
  const body = head + 'x'.repeat(39 - head.length);
  return `${body}${createHash('sha256').update(body).digest('hex').slice(0, 8)}\n`;
}

/**
 * A process appending `count` lines to `path` through O_APPEND: one descriptor for all
 * lines (`held`) or open/write/close per line (as `echo >> f`), one write(2) per line.
 */
function appender(path: string, tag: string, count: number, held: boolean): Promise<void> {
  const script = `
const fs = require('node:fs');
const crypto = require('node:crypto');
const [path, tag, count, held] = process.argv.slice(1);
function line(seq) {
  const head = tag + '-' + String(seq).padStart(5, '0') + '-';
  const body = head + 'x'.repeat(39 - head.length);
  return body + crypto.createHash('sha256').update(body).digest('hex').slice(0, 8) + '\\n';
}
let fd = held === '1' ? fs.openSync(path, 'a') : -1;
for (let i = 0; i < Number(count); i++) {
  if (held !== '1') fd = fs.openSync(path, 'a');
  fs.writeSync(fd, line(i));
  if (held !== '1') fs.closeSync(fd);
}
if (held === '1') fs.closeSync(fd);
`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script, path, tag, String(count), held ? '1' : '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`appender ${tag} exited ${code}: ${err}`))));
  });
}

interface AppendFigures {
  expectedBytes: number;
  lostBytes: number;
  linesLost: number;
  linesBroken: number;
  nulBytes: number;
  mountsDiffer: boolean;
}

/** Checks an appended file as read on each mount: every line whole and present once, no NULs, mounts identical. */
function checkAppended(paths: string[], tags: string[], count: number): AppendFigures {
  const expected = new Set<string>();
  for (const tag of tags) for (let i = 0; i < count; i++) expected.add(line(tag, i));
  const contents = paths.map((p) => readWhole(p));
  const first = contents[0]!;
  const seen = new Map<string, number>();
  let broken = 0;
  for (const l of first.toString('latin1').split(/(?<=\n)/)) {
    if (expected.has(l)) seen.set(l, (seen.get(l) ?? 0) + 1);
    else if (l.length > 0) broken++;
  }
  let linesLost = 0;
  for (const l of expected) if (!seen.has(l)) linesLost++;
  const expectedBytes = expected.size * 48;
  return {
    expectedBytes,
    lostBytes: linesLost * 48,
    linesLost,
    linesBroken: broken + [...seen.values()].filter((n) => n > 1).length,
    nulBytes: first.filter((b) => b === 0).length,
    mountsDiffer: contents.some((c) => !c.equals(first)),
  };
}

describe('two mounts, default 30 s caches: close-to-open, O_APPEND, limits', () => {
  let cluster: TestCluster | undefined;
  let a = '';
  let b = '';
  let c = '';

  before(async () => {
    cluster = await startCluster('coherence');
    a = (await cluster.mount({ name: 'mntA', cacheTimeoutSec: 30 })).mountpoint;
    b = (await cluster.mount({ name: 'mntB', cacheTimeoutSec: 30 })).mountpoint;
  });
  after(async () => {
    await cluster?.close();
  });

  test('rewrite and close on A, then open on B: every read right (20 rounds, sizes repeating)', () => {
    const f = rewriteDrill(a, b, 'rewritten', 20);
    console.log(`drill: rewrite/close on A, open/read on B: ${f.reads} reads checked, ${f.stale} stale, ${f.wrong} wrong`);
    assert.deepEqual(f, { reads: 20, stale: 0, wrong: 0 });
  });

  test('in-place rewrite of equal size on B, then open on A: every read right (20 rounds)', () => {
    const f = rewriteDrill(b, a, 'in-place', 20, { inPlace: true });
    console.log(`drill: same-size in-place rewrite on B, open/read on A: ${f.reads} reads checked, ${f.stale} stale, ${f.wrong} wrong`);
    assert.deepEqual(f, { reads: 20, stale: 0, wrong: 0 });
  });

  test('rewrite on A while B keeps the file open: every new open on B still reads right (20 rounds)', () => {
    const f = rewriteDrill(a, b, 'held-open', 20, { holdOpen: true });
    console.log(`drill: rewrite on A, B holding the file open, open/read on B: ${f.reads} reads checked, ${f.stale} stale, ${f.wrong} wrong`);
    assert.deepEqual(f, { reads: 20, stale: 0, wrong: 0 });
  });

  test('same-size rewrite on A, then stat and open on a 1 s-cache mount: every read right (6 rounds)', async () => {
    const d = (await cluster!.mount({ name: 'mntD', cacheTimeoutSec: 1 })).mountpoint;
    const f = rewriteDrill(a, d, 'stat-first', 6, { inPlace: true, statFirstAfterMs: 1_100 });
    console.log(`drill: same-size rewrite on A, stat then open/read on a 1 s-cache mount: ${f.reads} reads checked, ${f.stale} stale, ${f.wrong} wrong`);
    assert.deepEqual(f, { reads: 6, stale: 0, wrong: 0 });
  });

  test('a reader keeping the file open on B reads what A appends (never NULs) once its size shows', async () => {
    const d = join(cluster!.dir, 'mntD');
    const name = 'tailed';
    writeFileSync(join(a, name), line('A', 0));
    const fd = openSync(join(d, name), 'r'); // tail -f: one descriptor, polling the size
    let checked = 0;
    let zeros = 0;
    try {
      assert.equal(readWhole(join(d, name)).toString(), line('A', 0));
      for (let i = 1; i <= 5; i++) {
        const w = openSync(join(a, name), 'a');
        writeSync(w, line('A', i));
        closeSync(w);
        const want = 48 * (i + 1);
        const t0 = Date.now();
        while (fstatSync(fd).size < want && Date.now() - t0 < 10_000) await sleep(100);
        const buf = Buffer.alloc(want);
        const n = readSync(fd, buf, 0, want, 0);
        checked++;
        if (n !== want || buf.includes(0)) zeros++;
      }
    } finally {
      closeSync(fd);
    }
    console.log(`drill: tail -f on a 1 s-cache mount while A appends: ${checked} reads checked, ${zeros} short or with NULs`);
    assert.equal(zeros, 0);
  });

  test('two writers on two mounts: the one that wrote less closes last, nothing the other wrote is cut off (4 rounds)', () => {
    let lost = 0;
    for (let i = 0; i < 4; i++) {
      const name = `two-writers-${i}`;
      writeFileSync(join(a, name), '');
      const fa = openSync(join(a, name), 'r+'); // both open the file while it is empty
      const fb = openSync(join(b, name), 'r+');
      const head = randomBytes(1000);
      const tail = randomBytes((1 << 20) + i);
      writeSync(fb, tail, 0, tail.length, head.length);
      closeSync(fb);
      writeSync(fa, head, 0, head.length, 0); // A still believes the size is 0
      closeSync(fa);
      const want = Buffer.concat([head, tail]);
      for (const m of [a, b]) {
        const got = readWhole(join(m, name));
        if (!got.equals(want)) lost += Math.max(0, want.length - got.length) || want.length;
      }
    }
    console.log(`drill: two positional writers on two mounts, the shorter closing last: 4 files read on 2 mounts (${2 * (4 * ((1 << 20) + 1000) + 6)} bytes checked), ${lost} lost or wrong`);
    assert.equal(lost, 0);
  });

  test('concurrent O_APPEND from 3 processes on each mount (one descriptor each): every line whole, none lost, both mounts equal', async () => {
    const path = (m: string) => join(m, 'appended-held');
    writeFileSync(path(a), '');
    const tags = ['A0', 'A1', 'A2', 'B0', 'B1', 'B2'];
    const count = 100;
    await Promise.all(tags.map((t) => appender(path(t.startsWith('A') ? a : b), t, count, true)));
    const f = checkAppended([path(a), path(b)], tags, count);
    console.log(`drill: O_APPEND, 6 processes on 2 mounts, descriptor held: ${f.expectedBytes} bytes appended, ${f.lostBytes} lost, ${f.linesBroken} lines broken, ${f.nulBytes} NUL bytes, mounts ${f.mountsDiffer ? 'differ' : 'identical'}`);
    assert.deepEqual(f, { expectedBytes: 6 * count * 48, lostBytes: 0, linesLost: 0, linesBroken: 0, nulBytes: 0, mountsDiffer: false });
  });

  test('concurrent O_APPEND from 3 processes on each mount (open, write, close per line): every line whole, none lost, both mounts equal', async () => {
    const path = (m: string) => join(m, 'appended-echo');
    writeFileSync(path(a), '');
    const tags = ['A0', 'A1', 'A2', 'B0', 'B1', 'B2'];
    const count = 30;
    await Promise.all(tags.map((t) => appender(path(t.startsWith('A') ? a : b), t, count, false)));
    const f = checkAppended([path(a), path(b)], tags, count);
    console.log(`drill: O_APPEND, 6 processes on 2 mounts, open/write/close per line: ${f.expectedBytes} bytes appended, ${f.lostBytes} lost, ${f.linesBroken} lines broken, ${f.nulBytes} NUL bytes, mounts ${f.mountsDiffer ? 'differ' : 'identical'}`);
    assert.deepEqual(f, { expectedBytes: 6 * count * 48, lostBytes: 0, linesLost: 0, linesBroken: 0, nulBytes: 0, mountsDiffer: false });
  });

  test('a --writeback mount: rewrite/close there, open on B reads right (10 rounds); O_APPEND from both', async () => {
    c = (await cluster!.mount({ name: 'mntC', writeback: true, cacheTimeoutSec: 30 })).mountpoint;
    const f = rewriteDrill(c, b, 'from-writeback', 10);
    console.log(`drill: --writeback mount rewrite/close, open/read on B: ${f.reads} reads checked, ${f.stale} stale, ${f.wrong} wrong`);
    assert.deepEqual(f, { reads: 10, stale: 0, wrong: 0 });
    const path = (m: string) => join(m, 'appended-writeback');
    writeFileSync(path(b), '');
    const tags = ['B0', 'B1', 'C0', 'C1'];
    const count = 50;
    await Promise.all(tags.map((t) => appender(path(t.startsWith('B') ? b : c), t, count, true)));
    const g = checkAppended([path(b), path(c), path(a)], tags, count);
    console.log(`drill: O_APPEND, 4 processes on B and the --writeback mount: ${g.expectedBytes} bytes appended, ${g.lostBytes} lost, ${g.linesBroken} lines broken, ${g.nulBytes} NUL bytes, mounts ${g.mountsDiffer ? 'differ' : 'identical'}`);
    assert.deepEqual(g, { expectedBytes: 4 * count * 48, lostBytes: 0, linesLost: 0, linesBroken: 0, nulBytes: 0, mountsDiffer: false });
  });

  test('offsets at 2^53, 2^62 and 2^63 - 1: EFBIG from pwrite, truncate, fallocate and copy_file_range; the file stays readable on both mounts', () => {
    const f = join(a, 'limits');
    writeFileSync(f, 'start');
    const src = join(a, 'limits-src');
    writeFileSync(src, 'copy me');
    const results: Record<string, unknown> = {};
    results['pwrite 2^53-2 (2 bytes)'] = syscall(`pwrite(${py(f)}, b'QQ', ${2n ** 53n - 2n})`);
    for (const [label, off] of [['2^53', 2n ** 53n], ['2^62', 2n ** 62n], ['2^63-1', 2n ** 63n - 1n]] as const) {
      results[`pwrite ${label}`] = syscall(`pwrite(${py(f)}, b'Q', ${off})`);
      results[`truncate ${label}`] = syscall(`os.truncate(${py(f)}, ${off})`);
      results[`fallocate ${label}`] = syscall(`fallocate(${py(f)}, 0, ${off}, 1)`);
      results[`fallocate keep-size ${label}`] = syscall(`fallocate(${py(f)}, ${FALLOC_FL_KEEP_SIZE}, ${off}, 1)`);
      results[`copy_file_range ${label}`] = syscall(`copy_range(${py(src)}, ${py(f)}, 0, ${off}, 7)`);
    }
    console.log(`drill: limits: ${JSON.stringify(results)}`);
    for (const [what, r] of Object.entries(results)) {
      // At 2^63 - 1 the kernel itself refuses some calls first (EFBIG or EINVAL: past s_maxbytes).
      assert.ok(typeof r === 'object' && r !== null && ['EFBIG', 'EINVAL'].includes((r as { errno: string }).errno), `${what}: ${JSON.stringify(r)}`);
    }
    for (const m of [a, b]) {
      assert.equal(statSync(join(m, 'limits')).size, 5);
      assert.equal(readFileSync(join(m, 'limits'), 'utf8'), 'start');
    }
  });
});
