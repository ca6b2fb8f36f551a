// Many requests in flight at once against a slow backend, and INTERRUPT: a read blocked in
// the backend is interrupted by a signal to the caller and returns EINTR.
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, test } from 'node:test';
import type { RequestContext } from '../../fuse/types.js';
import { mountMem, py, type Mounted } from './support/mounted.js';

describe('fuse server: requests in flight and INTERRUPT', () => {
  const mounts: Mounted[] = [];
  after(async () => {
    for (const m of mounts) await m.close();
  });

  test('a slow backend (50 ms per read) and 8 concurrent readers: many requests in flight at once', async () => {
    const m = await mountMem({ beforeRead: () => sleep(50) });
    mounts.push(m);
    const files: string[] = [];
    for (let i = 0; i < 8; i++) {
      const ino = m.fs.addFile(1, `slow-${i}`, Buffer.alloc(64 * 1024, i));
      m.fs.directIo.add(ino); // every read reaches the server
      files.push(join(m.dir, `slow-${i}`));
    }
    m.session.resetMaxInFlight();
    const t0 = Date.now();
    const outs = await Promise.all(
      files.map((f) =>
        py(
          `
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
n = 0
for i in range(10):
    n += len(os.pread(fd, 4096, i * 4096))
print(n)
`,
          f,
        ),
      ),
    );
    const elapsed = Date.now() - t0;
    for (const o of outs) assert.equal(o.trim(), String(10 * 4096));
    const peak = m.session.stats.maxInFlight;
    assert.ok(peak >= 4, `at most ${peak} requests were in flight at once`);
    // 80 reads of 50 ms one at a time would take 4 s; in parallel about 0.5 s plus process starts.
    assert.ok(elapsed < 80 * 50, `80 slow reads took ${elapsed} ms: they ran one at a time`);
  });

  test('INTERRUPT: a read blocked in the backend returns EINTR when the caller gets a signal', async () => {
    const seen: { aborted: boolean }[] = [];
    let blockingIno = -1;
    const m = await mountMem({
      beforeRead: (ctx: RequestContext, ino: number) =>
        ino !== blockingIno ? Promise.resolve() : new Promise<void>((resolve, reject) => {
          const rec = { aborted: false };
          seen.push(rec);
          // Blocks until interrupted (or 20 s, so a broken INTERRUPT fails the test, not hangs it).
          const timer = setTimeout(resolve, 20_000);
          ctx.signal.addEventListener('abort', () => {
            rec.aborted = true;
            clearTimeout(timer);
            reject(ctx.signal.reason);
          });
        }),
    });
    mounts.push(m);
    const ino = m.fs.addFile(1, 'blocking', 'data that never comes');
    blockingIno = ino;
    m.fs.directIo.add(ino); // a synchronous READ request the caller waits on (the page cache path is not interruptible)
    const out = await py(
      `
import ctypes, os, signal, sys, time
libc = ctypes.CDLL(None, use_errno=True)
signal.signal(signal.SIGALRM, lambda *a: None)  # installed without SA_RESTART
fd = os.open(sys.argv[1], os.O_RDONLY)
buf = ctypes.create_string_buffer(4096)
signal.setitimer(signal.ITIMER_REAL, 0.5)
t0 = time.monotonic()
r = libc.read(fd, buf, 4096)   # ctypes: the raw syscall result, no PEP 475 retry
print(r, ctypes.get_errno(), round(time.monotonic() - t0, 1))
`,
      join(m.dir, 'blocking'),
    );
    const [r, errno, secs] = out.trim().split(' ');
    assert.equal(r, '-1');
    assert.equal(errno, '4', 'EINTR');
    assert.ok(Number(secs) < 10, `the read returned after ${secs} s, not at the signal`);
    assert.ok(m.session.stats.interrupts >= 1, 'the server saw FUSE_INTERRUPT');
    assert.ok(seen.some((s) => s.aborted), 'the backend saw its AbortSignal fire');
    // The mount is still healthy afterwards.
    await fsp.writeFile(join(m.dir, 'after'), 'ok');
    assert.equal(await fsp.readFile(join(m.dir, 'after'), 'utf8'), 'ok');
    assert.equal(m.session.stats.inFlight, 0);
  });
});
