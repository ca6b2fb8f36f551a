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
    for (const o of outs) assert.equal(o.trim(), String(10 * 4096));
    const peak = m.session.stats.maxInFlight;
    assert.ok(peak >= 4, `at most ${peak} requests were in flight at once`);
  });

  test('requests in flight stay within maxInFlight plus the read buffers, and all complete', async () => {
    const m = await mountMem({ beforeRead: () => sleep(30) }, { maxInFlight: 2, concurrency: 2 });
    mounts.push(m);
    const files: string[] = [];
    for (let i = 0; i < 8; i++) {
      m.fs.directIo.add(m.fs.addFile(1, `bounded-${i}`, Buffer.alloc(8192, i)));
      files.push(join(m.dir, `bounded-${i}`));
    }
    m.session.resetMaxInFlight();
    const outs = await Promise.all(
      files.map((f) => py(`import os, sys\nfd = os.open(sys.argv[1], os.O_RDONLY)\nprint(sum(len(os.pread(fd, 4096, (i % 2) * 4096)) for i in range(5)))`, f)),
    );
    for (const o of outs) assert.equal(o.trim(), String(5 * 4096));
    const peak = m.session.stats.maxInFlight;
    assert.ok(peak <= 2 + 2, `${peak} requests in flight with maxInFlight 2 and 2 read buffers`);
    assert.ok(peak >= 3, `the bound was never reached (peak ${peak}): the test shows nothing`);
    assert.equal(m.session.stats.inFlight, 0);
  });

  test('one process, O_DIRECT libaio at queue depth 8 (FUSE_ASYNC_DIO): its reads are in flight together', async () => {
    const m = await mountMem({ beforeRead: () => sleep(50) });
    mounts.push(m);
    const content = Buffer.alloc(8 * 4096);
    for (let i = 0; i < 8; i++) content.fill(65 + i, i * 4096, (i + 1) * 4096);
    m.fs.addFile(1, 'aio', content);
    m.session.resetMaxInFlight();
    // Raw io_setup/io_submit/io_getevents through ctypes (no libaio package needed).
    const out = await py(
      `
import ctypes, mmap, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
class IOCB(ctypes.Structure):
    _fields_ = [('data', ctypes.c_uint64), ('key', ctypes.c_uint32), ('rw_flags', ctypes.c_int32),
                ('opcode', ctypes.c_uint16), ('prio', ctypes.c_int16), ('fd', ctypes.c_uint32),
                ('buf', ctypes.c_uint64), ('nbytes', ctypes.c_uint64), ('offset', ctypes.c_int64),
                ('res2', ctypes.c_uint64), ('flags', ctypes.c_uint32), ('resfd', ctypes.c_uint32)]
class EVENT(ctypes.Structure):
    _fields_ = [('data', ctypes.c_uint64), ('obj', ctypes.c_uint64), ('res', ctypes.c_int64), ('res2', ctypes.c_int64)]
N = 8
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
ctx = ctypes.c_ulong(0)
assert libc.syscall(206, N, ctypes.byref(ctx)) == 0, ctypes.get_errno()   # io_setup
mem = mmap.mmap(-1, N * 4096)
base = ctypes.addressof(ctypes.c_char.from_buffer(mem))
cbs = (IOCB * N)()
ptrs = (ctypes.POINTER(IOCB) * N)()
for i in range(N):
    cbs[i].data = i; cbs[i].opcode = 0; cbs[i].fd = fd   # IOCB_CMD_PREAD
    cbs[i].buf = base + i * 4096; cbs[i].nbytes = 4096; cbs[i].offset = i * 4096
    ptrs[i] = ctypes.pointer(cbs[i])
assert libc.syscall(209, ctx, N, ptrs) == N, ctypes.get_errno()           # io_submit
events = (EVENT * N)()
got = 0
while got < N:
    r = libc.syscall(208, ctx, 1, N - got, ctypes.byref(events, got * ctypes.sizeof(EVENT)), None)  # io_getevents
    assert r > 0, ctypes.get_errno()
    got += r
print(sorted(e.res for e in events), mem[0:1].decode() + mem[7 * 4096:7 * 4096 + 1].decode())
`,
      join(m.dir, 'aio'),
    );
    assert.equal(out.trim(), `${JSON.stringify(Array(8).fill(4096)).replace(/,/g, ', ')} AH`);
    assert.ok(m.session.conn.flags & (1n << 15n), 'ASYNC_DIO negotiated');
    const peak = m.session.stats.maxInFlight;
    assert.ok(peak >= 4, `one process at queue depth 8 had at most ${peak} reads in flight`);
  });

  test('INTERRUPT: a read blocked in the backend returns EINTR when the caller gets a signal', async () => {
    const seen: { aborted: boolean; heard: boolean }[] = [];
    let blockingIno = -1;
    const m = await mountMem({
      beforeRead: (ctx: RequestContext, ino: number) =>
        ino !== blockingIno ? Promise.resolve() : new Promise<void>((resolve, reject) => {
          const rec = { aborted: false, heard: false };
          seen.push(rec);
          ctx.onInterrupt?.(() => (rec.heard = true)); // the listener form hot paths use (no AbortController)
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
    assert.ok(seen.some((s) => s.heard), 'the backend heard the interrupt through onInterrupt too');
    // The mount is still healthy afterwards.
    await fsp.writeFile(join(m.dir, 'after'), 'ok');
    assert.equal(await fsp.readFile(join(m.dir, 'after'), 'utf8'), 'ok');
    assert.equal(m.session.stats.inFlight, 0);
  });
});
