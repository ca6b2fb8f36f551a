// Lookup counting: READDIRPLUS entries and LOOKUP replies each hand the kernel one reference,
// FORGET/BATCH_FORGET give them back, and the server's inode table returns to its baseline
// when the kernel drops its caches (so it stays bounded after any number of lookups).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { mountMem, py, run, type Mounted } from './support/mounted.js';

async function until(cond: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Makes the kernel drop unused dentries and inodes: it then FORGETs them. */
function dropCaches(): void {
  writeFileSync('/proc/sys/vm/drop_caches', '2');
}

describe('fuse server: lookup counting, READDIRPLUS and FORGET', () => {
  const mounts: Mounted[] = [];
  after(async () => {
    for (const m of mounts) await m.close();
  });

  for (const mode of ['auto', 'always'] as const) {
    test(`ls -l of 3,000 entries (readdirplus ${mode}): every entry listed, references add up, all forgotten after drop_caches`, async () => {
      const m = await mountMem({ entryTimeoutMs: 60_000, attrTimeoutMs: 60_000 }, { readdirplus: mode });
      mounts.push(m);
      const dir = m.fs.addDir(1, 'many');
      const inos: number[] = [];
      for (let i = 0; i < 3000; i++) inos.push(m.fs.addFile(dir, `file-${String(i).padStart(5, '0')}`, 'x'.repeat(i % 7)));
      const r = await run('ls', ['-l', join(m.dir, 'many')]);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split('\n');
      assert.equal(lines.length, 3001, 'total line + 3,000 entries');
      assert.match(lines[1]!, /^-rw-r--r-- 1 root root 0 .* file-00000$/);
      assert.match(lines[3000]!, /file-02999$/);
      const ops = m.session.stats.ops;
      assert.ok((ops.READDIRPLUS ?? 0) > 0, 'the kernel used READDIRPLUS');
      if (mode === 'always') {
        assert.equal(ops.READDIR ?? 0, 0, 'always: no plain READDIR');
        assert.ok((ops.LOOKUP ?? 0) <= 2, `always: ls -l needs no LOOKUP per entry (saw ${ops.LOOKUP})`);
      }
      // Every file is one kernel inode holding at least one reference; the sum is what we
      // handed out (entries in READDIRPLUS replies plus LOOKUP replies).
      let sum = 0;
      for (const ino of inos) {
        const c = m.session.lookupCount(ino);
        assert.ok(c >= 1, `inode ${ino} has ${c} references`);
        sum += c;
      }
      assert.ok(sum >= 3000 && sum <= 3000 + (ops.LOOKUP ?? 0), `sum ${sum}`);
      dropCaches();
      await until(() => inos.every((ino) => m.session.lookupCount(ino) === 0), 'every file forgotten');
      assert.ok(m.fs.counters.forgets >= 3000, `forget() called ${m.fs.counters.forgets} times`);
      assert.equal(m.session.stats.errors, 0, 'no FORGET beyond the count (the assertion would have fired)');
    });
  }

  test('100,000 lookups of files the kernel then forgets: the inode table returns to its baseline', async () => {
    const m = await mountMem({ entryTimeoutMs: 60_000, attrTimeoutMs: 60_000 });
    mounts.push(m);
    const DIRS = 10;
    const PER = 10_000;
    for (let d = 0; d < DIRS; d++) {
      const dir = m.fs.addDir(1, `d${d}`);
      for (let i = 0; i < PER; i++) m.fs.addFile(dir, `f${i}`);
    }
    const baseline = m.session.stats.knownInodes;
    const out = await py(
      `
import os, sys
root, dirs, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
n = 0
for d in range(dirs):
    for i in range(per):
        os.stat(f'{root}/d{d}/f{i}')
        n += 1
print(n)
`,
      m.dir,
      String(DIRS),
      String(PER),
    );
    assert.equal(out.trim(), String(DIRS * PER));
    const peak = m.session.stats.knownInodes;
    assert.ok(peak >= baseline + DIRS * PER, `table held ${peak} inodes after 100,000 lookups`);
    assert.ok((m.session.stats.ops.LOOKUP ?? 0) >= DIRS * PER);
    dropCaches();
    await until(() => m.session.stats.knownInodes <= baseline + DIRS + 1, `the table back near ${baseline} (now ${m.session.stats.knownInodes})`);
    assert.ok((m.session.stats.ops.BATCH_FORGET ?? 0) > 0, 'the kernel batched its forgets');
    assert.ok(m.fs.counters.forgets >= DIRS * PER);
    assert.equal(m.session.stats.errors, 0);
  });
});
