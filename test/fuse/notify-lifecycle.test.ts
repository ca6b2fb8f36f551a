// Kernel notifications (invalidate an inode's attributes and pages, a directory entry), and
// the mount's life: lazy unmount while a file is open, a connection aborted through fusectl,
// and an unmount from outside.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { mountMem, run, type Mounted } from './support/mounted.js';

const HOUR = 3_600_000;

function mounted(dir: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === dir);
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<T>((_r, reject) => (timer = setTimeout(() => reject(new Error(`${what} not within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

describe('fuse server: notifications', () => {
  const mounts: Mounted[] = [];
  after(async () => {
    for (const m of mounts) await m.close();
  });

  test('invalInode: an attribute changed behind the kernel (attr timeout 1 h) shows after the notification; so do new pages', async () => {
    const m = await mountMem({ entryTimeoutMs: HOUR, attrTimeoutMs: HOUR });
    mounts.push(m);
    const ino = m.fs.addFile(1, 'f', 'old content');
    const f = join(m.dir, 'f');
    assert.equal(await fsp.readFile(f, 'utf8'), 'old content'); // now in the page cache
    // (a read marks atime stale, so this stat asks once more; from here on it is cached)
    assert.equal((await fsp.stat(f)).mode & 0o777, 0o644);
    const node = m.fs.get(ino);
    node.attr.mode = (node.attr.mode & ~0o777) | 0o600;
    node.data = Buffer.from('NEW content');
    assert.equal((await fsp.stat(f)).mode & 0o777, 0o644, 'still cached: the kernel did not ask');
    await m.session.notifier.invalInode(ino);
    assert.equal((await fsp.stat(f)).mode & 0o777, 0o600, 'the new mode after invalInode');
    // The page cache was dropped too (offset 0, length 0 = the whole file).
    const fh = await fsp.open(f, 'r');
    const buf = Buffer.alloc(11);
    await fh.read(buf, 0, 11, 0);
    await fh.close();
    assert.equal(buf.toString(), 'NEW content');
    // Attributes only (offset -1): allowed, and harmless for an inode the kernel does not hold.
    await m.session.notifier.invalInode(ino, -1);
    await m.session.notifier.invalInode(999_999);
  });

  test('invalEntry: a name moved behind the kernel (entry timeout 1 h) resolves anew after the notification', async () => {
    const m = await mountMem({ entryTimeoutMs: HOUR, attrTimeoutMs: HOUR });
    mounts.push(m);
    m.fs.addFile(1, 'before', 'x');
    await fsp.stat(join(m.dir, 'before'));
    // Rename inside the filesystem, not through the kernel.
    await m.fs.rename({ unique: 0n, uid: 0, gid: 0, pid: 0, signal: new AbortController().signal }, 1, 'before', 1, 'after', 0);
    await fsp.stat(join(m.dir, 'before')); // the kernel's dentry still says it exists
    await m.session.notifier.invalEntry(1, 'before');
    await assert.rejects(fsp.stat(join(m.dir, 'before')), { code: 'ENOENT' });
    assert.ok((await fsp.stat(join(m.dir, 'after'))).isFile());
    assert.ok(m.session.stats.notifications >= 1);
  });
});

describe('fuse server: mount lifecycle', () => {
  test('unmount while busy: lazy unmount detaches at once, the open file keeps working, closed resolves when it is closed', async () => {
    const m = await mountMem();
    m.fs.addFile(1, 'held', 'still readable');
    // A process holds the file open, reads it once it is told the mount is detached.
    const child = spawn('python3', ['-c', `
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
print('open', flush=True)
sys.stdin.readline()
print(os.pread(fd, 100, 0).decode(), flush=True)
`, join(m.dir, 'held')], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => (out += d));
    await within(new Promise<void>((r) => { const t = setInterval(() => { if (out.includes('open')) { clearInterval(t); r(); } }, 20); }), 10_000, 'child open');
    await assert.rejects(m.session.unmount(), { code: 'EBUSY' }, 'a plain unmount refuses a busy mount');
    assert.ok(mounted(m.dir));
    await m.session.unmount({ lazy: true });
    assert.ok(!mounted(m.dir), 'detached from the tree');
    let closed = false;
    void m.session.closed.then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(closed, false, 'the connection lives while the file is open');
    child.stdin.write('go\n');
    await within(new Promise((r) => child.on('exit', r)), 10_000, 'child exit');
    assert.match(out, /still readable/);
    await within(m.session.closed, 10_000, 'closed after the last user left');
    await m.close();
  });

  test('a connection aborted through /sys/fs/fuse/connections/N/abort resolves closed', async () => {
    const m = await mountMem();
    assert.ok(Number.isInteger(m.session.connectionId));
    const r = await run('sh', ['-c', `echo 1 > /sys/fs/fuse/connections/${m.session.connectionId}/abort`]);
    assert.equal(r.code, 0, r.stderr);
    await within(m.session.closed, 10_000, 'closed after abort');
    await assert.rejects(fsp.stat(join(m.dir, 'x')), { code: 'ENOTCONN' });
    await run('umount', ['-l', m.dir]);
    await m.close();
  });

  test('an unmount from outside (umount(8)) resolves closed; unmount() afterwards is a no-op', async () => {
    const m = await mountMem();
    const r = await run('umount', [m.dir]);
    assert.equal(r.code, 0, r.stderr);
    await within(m.session.closed, 10_000, 'closed after umount(8)');
    await m.session.unmount();
    await m.close();
  });
});
