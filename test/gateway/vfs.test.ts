// The inode-based VFS without a kernel: what it asks of the metaserver (orphans released
// once neither a handle nor the kernel holds them), one inode state for every hard link,
// dirty sizes before commit, rename flags, fallocate/lseek/copy_file_range, errnos.
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { test } from 'node:test';
import { errnoOf } from '../../gateway/errors.js';
import { internalContext, Vfs } from '../../gateway/vfs.js';
import {
  FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE, RENAME_EXCHANGE, RENAME_NOREPLACE, SEEK_DATA, SEEK_HOLE,
  type EntryOut, type NegativeEntryOut,
} from '../../fuse/types.js';
import { ROOT_INO } from '../../metaserver/meta-client.js';
import { MemoryFileData } from './support/memory-file-data.js';
import { MemoryMetaClient } from './support/memory-meta.js';

const E = constants.errno;
const O_RDONLY = 0;
const O_RDWR = 2;
const O_TRUNC = 0o1000;
const O_DIRECT = 0o40000;
const ctx = internalContext(0, 0);

function setup(opts: { readOnly?: boolean } = {}) {
  const meta = new MemoryMetaClient();
  const data = new MemoryFileData();
  const vfs = new Vfs(meta, data, { attrTimeoutMs: 30_000, entryTimeoutMs: 30_000, deleteOrphanData: true, ...opts });
  return { meta, data, vfs };
}

async function errno(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (err) {
    return errnoOf(err);
  }
  throw new Error('expected a failure');
}

function entry(e: EntryOut | NegativeEntryOut): EntryOut {
  assert.ok('attr' in e, 'a positive entry');
  return e;
}

async function createFile(vfs: Vfs, name = 'f', contents = '', parent = ROOT_INO) {
  const c = await vfs.create(ctx, parent, name, 0o644, O_RDWR, 0o022);
  if (contents) await vfs.write(ctx, c.entry.attr.ino, c.open.fh, 0, Buffer.from(contents), 0);
  return { ino: c.entry.attr.ino, fh: c.open.fh };
}

async function readAll(vfs: Vfs, ino: number, fh: number, length = 1 << 16): Promise<string> {
  const buf = Buffer.alloc(length);
  const n = await vfs.read(ctx, ino, fh, 0, buf);
  return buf.subarray(0, n).toString();
}

test('replies carry the configured timeouts and the caller as owner', async () => {
  const { vfs } = setup();
  const other = internalContext(1000, 1000);
  const e = await vfs.mkdir(other, ROOT_INO, 'd', 0o777, 0o022);
  assert.equal(e.entryTimeoutMs, 30_000);
  assert.equal(e.attrTimeoutMs, 30_000);
  assert.equal(e.attr.mode & 0o7777, 0o755, 'umask applied');
  assert.deepEqual([e.attr.uid, e.attr.gid], [1000, 1000]);
  const a = await vfs.getattr(ctx, e.attr.ino);
  assert.equal(a.attrTimeoutMs, 30_000);
});

test('a setgid directory hands its group down, and the bit to subdirectories', async () => {
  const { vfs } = setup();
  const d = await vfs.mkdir(ctx, ROOT_INO, 'sgid', 0o777, 0);
  await vfs.setattr(ctx, d.attr.ino, { gid: 50, mode: 0o2777 });
  const other = internalContext(1000, 1000);
  const sub = await vfs.mkdir(other, d.attr.ino, 'sub', 0o755, 0);
  const f = await vfs.create(other, d.attr.ino, 'f', 0o644, O_RDWR, 0);
  assert.deepEqual([sub.attr.uid, sub.attr.gid, sub.attr.mode & 0o2000], [1000, 50, 0o2000]);
  assert.deepEqual([f.entry.attr.uid, f.entry.attr.gid, f.entry.attr.mode & 0o2000], [1000, 50, 0]);
});

test('a hard link is one inode: nlink, mode, size and data are the same through both names', async () => {
  const { vfs } = setup();
  const { ino, fh } = await createFile(vfs, 'a', 'hello world');
  await vfs.flush(ctx, ino, fh);
  const b = await vfs.link(ctx, ino, ROOT_INO, 'b');
  assert.equal(b.attr.ino, ino);
  assert.equal(b.attr.nlink, 2, 'the link reply carries the new nlink');
  const viaA = entry(await vfs.lookup(ctx, ROOT_INO, 'a'));
  assert.equal(viaA.attr.nlink, 2);
  await vfs.setattr(ctx, ino, { mode: 0o600, size: 5 });
  const viaB = entry(await vfs.lookup(ctx, ROOT_INO, 'b'));
  assert.deepEqual([viaB.attr.ino, viaB.attr.mode & 0o777, viaB.attr.size], [ino, 0o600, 5]);
  assert.equal(await readAll(vfs, ino, fh), 'hello');
  await vfs.unlink(ctx, ROOT_INO, 'a');
  assert.equal((await vfs.getattr(ctx, ino)).attr.nlink, 1);
  await vfs.release(ctx, ino, fh, 0);
});

test('an unlinked open file stays readable and goes to the trash only after its last release and FORGET', async () => {
  const { meta, vfs } = setup();
  const { ino, fh } = await createFile(vfs, 'f', 'still here');
  await vfs.unlink(ctx, ROOT_INO, 'f');
  assert.equal(await errno(vfs.lookup(ctx, ROOT_INO, 'f')), E.ENOENT);
  assert.equal((await vfs.getattr(ctx, ino)).attr.nlink, 0);
  assert.equal(await readAll(vfs, ino, fh), 'still here');
  await vfs.release(ctx, ino, fh, 0);
  assert.equal(meta.calls.get('releaseOrphan') ?? 0, 0, 'the kernel still holds the inode');
  const before = meta.inodeCount();
  vfs.forget(ino);
  await new Promise((r) => setImmediate(r));
  assert.equal(meta.calls.get('releaseOrphan'), 1);
  assert.equal(meta.inodeCount(), before - 1);
  assert.equal(vfs.stats().unreleasedOrphans, 0);
});

test('FORGET before the last release: the release frees the orphan', async () => {
  const { meta, vfs } = setup();
  const { ino, fh } = await createFile(vfs, 'f', 'x');
  vfs.forget(ino);
  await vfs.unlink(ctx, ROOT_INO, 'f');
  assert.equal(meta.calls.get('releaseOrphan') ?? 0, 0, 'still open');
  await vfs.release(ctx, ino, fh, 0);
  assert.equal(meta.calls.get('releaseOrphan'), 1);
});

test('a file replaced by rename is released like an unlinked one; kernel inodes are bounded by FORGET', async () => {
  const { meta, vfs } = setup();
  const a = await createFile(vfs, 'a', 'new');
  const b = await createFile(vfs, 'b', 'old');
  for (const f of [a, b]) await vfs.release(ctx, f.ino, f.fh, 0);
  await vfs.rename(ctx, ROOT_INO, 'a', ROOT_INO, 'b', 0);
  assert.equal(meta.calls.get('releaseOrphan') ?? 0, 0);
  vfs.forget(b.ino);
  await new Promise((r) => setImmediate(r));
  assert.equal(meta.calls.get('releaseOrphan'), 1);
  vfs.forget(a.ino);
  assert.equal(vfs.stats().kernelInodes, 0);
});

test('writes show their size at once and commit it at flush; O_TRUNC at open empties the file', async () => {
  const { meta, vfs } = setup();
  const { ino, fh } = await createFile(vfs);
  await vfs.write(ctx, ino, fh, 1000, Buffer.alloc(24, 1), 0);
  assert.equal((await vfs.getattr(ctx, ino)).attr.size, 1024);
  assert.equal((await meta.getInode(ino)).size, 0);
  await vfs.flush(ctx, ino, fh);
  assert.equal((await meta.getInode(ino)).size, 1024);
  await vfs.setattr(ctx, ino, { size: 10, fh });
  assert.equal((await meta.getInode(ino)).size, 10);
  await vfs.release(ctx, ino, fh, 0);
  const o = await vfs.open(ctx, ino, O_RDWR | O_TRUNC);
  assert.equal((await meta.getInode(ino)).size, 0);
  assert.equal(o.keepCache, false);
  await vfs.release(ctx, ino, o.fh, 0);
});

test('open keeps the kernel page cache only when size and mtime did not change elsewhere', async () => {
  const { meta, vfs } = setup();
  const { ino, fh } = await createFile(vfs, 'f', 'abc');
  await vfs.flush(ctx, ino, fh);
  await vfs.release(ctx, ino, fh, 0);
  const again = await vfs.open(ctx, ino, O_RDONLY);
  assert.equal(again.keepCache, true);
  await vfs.release(ctx, ino, again.fh, 0);
  await meta.setAttr(ino, { size: 2, mtimeMs: 1 }); // another mount truncated it
  const changed = await vfs.open(ctx, ino, O_RDONLY);
  assert.equal(changed.keepCache, false);
  assert.equal((await vfs.getattr(ctx, ino)).attr.size, 2);
  await vfs.release(ctx, ino, changed.fh, 0);
});

test('an unchanged file keeps its kernel pages at an open long after the short gateway cache expired, until the kernel forgets it', async () => {
  const meta = new MemoryMetaClient();
  const vfs = new Vfs(meta, new MemoryFileData(), { attrTimeoutMs: 30_000, entryTimeoutMs: 30_000, gatewayCacheMs: 1 });
  const { ino, fh } = await createFile(vfs, 'f', 'abc');
  await vfs.flush(ctx, ino, fh);
  await vfs.release(ctx, ino, fh, 0);
  await new Promise((r) => setTimeout(r, 20)); // the gateway's own attributes are gone
  for (let i = 0; i < 2; i++) {
    const again = await vfs.open(ctx, ino, O_RDONLY);
    assert.equal(again.keepCache, true, `open ${i}`);
    await vfs.release(ctx, ino, again.fh, 0);
  }
  vfs.forget(ino); // the kernel dropped the inode, and its pages with it
  const fresh = await vfs.open(ctx, ino, O_RDONLY);
  assert.equal(fresh.keepCache, false);
  await vfs.release(ctx, ino, fresh.fh, 0);
});

test('setattr: UTIME_NOW and one time at a time (touch -m / -a)', async () => {
  const { vfs } = setup();
  const { ino, fh } = await createFile(vfs);
  await vfs.setattr(ctx, ino, { atimeMs: 3_000_000, mtimeMs: 3_000_000 });
  const m = await vfs.setattr(ctx, ino, { mtimeMs: 1_000_000 });
  assert.deepEqual([m.attr.atimeMs, m.attr.mtimeMs], [3_000_000, 1_000_000]);
  const before = Date.now();
  const a = await vfs.setattr(ctx, ino, { atimeMs: 'now' });
  assert.ok(a.attr.atimeMs >= before);
  assert.equal(a.attr.mtimeMs, 1_000_000);
  await vfs.release(ctx, ino, fh, 0);
});

test('RENAME_NOREPLACE refuses an existing target; RENAME_EXCHANGE swaps two names', async () => {
  const { vfs } = setup();
  const a = await createFile(vfs, 'a', 'A');
  const d = await vfs.mkdir(ctx, ROOT_INO, 'd', 0o755, 0);
  assert.equal(await errno(vfs.rename(ctx, ROOT_INO, 'a', ROOT_INO, 'd', RENAME_NOREPLACE)), E.EEXIST);
  await vfs.rename(ctx, ROOT_INO, 'a', ROOT_INO, 'd', RENAME_EXCHANGE);
  assert.equal(entry(await vfs.lookup(ctx, ROOT_INO, 'd')).attr.ino, a.ino);
  assert.equal(entry(await vfs.lookup(ctx, ROOT_INO, 'a')).attr.ino, d.attr.ino);
  await vfs.rename(ctx, ROOT_INO, 'a', ROOT_INO, 'e', RENAME_NOREPLACE);
  assert.equal(entry(await vfs.lookup(ctx, ROOT_INO, 'e')).attr.ino, d.attr.ino);
  assert.equal(await errno(vfs.rename(ctx, ROOT_INO, 'e', ROOT_INO, 'missing', RENAME_EXCHANGE)), E.ENOENT);
  await vfs.release(ctx, a.ino, a.fh, 0);
});

test('readdir and readdirplus page through a directory with cookies; plus entries carry attributes', async () => {
  const { vfs } = setup();
  for (let i = 0; i < 600; i++) await vfs.mknod(ctx, ROOT_INO, `n${String(i).padStart(3, '0')}`, 0o100644, 0, 0);
  const dir = await vfs.opendir(ctx, ROOT_INO, 0);
  const names: string[] = [];
  let withAttrs = 0;
  for (let off = 0; ; ) {
    const batch = await vfs.readdir(ctx, ROOT_INO, dir.fh, off, true);
    if (batch.length === 0) break;
    for (const e of batch) {
      names.push(e.name);
      if (e.entry) {
        withAttrs++;
        assert.equal(e.entry.attr.ino, e.ino);
      }
    }
    off = batch[batch.length - 1]!.offset;
  }
  await vfs.releasedir(ctx, ROOT_INO, dir.fh);
  assert.equal(names.length, 602);
  assert.deepEqual(names.slice(0, 3), ['.', '..', 'n000']);
  assert.equal(withAttrs, 600, 'every entry but . and ..');
});

test('fallocate: default mode grows the size, KEEP_SIZE does not, PUNCH_HOLE and ZERO_RANGE zero a range', async () => {
  const { vfs } = setup();
  const { ino, fh } = await createFile(vfs, 'f', 'x'.repeat(8192));
  await vfs.fallocate(ctx, ino, fh, 0, 16384, 0);
  assert.equal((await vfs.getattr(ctx, ino)).attr.size, 16384);
  await vfs.fallocate(ctx, ino, fh, 0, 65536, FALLOC_FL_KEEP_SIZE);
  assert.equal((await vfs.getattr(ctx, ino)).attr.size, 16384);
  assert.equal(await errno(vfs.fallocate(ctx, ino, fh, 0, 4096, FALLOC_FL_PUNCH_HOLE)), E.EOPNOTSUPP, 'PUNCH_HOLE needs KEEP_SIZE');
  await vfs.fallocate(ctx, ino, fh, 0, 4096, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
  const buf = Buffer.alloc(8192);
  assert.equal(await vfs.read(ctx, ino, fh, 0, buf), 8192);
  assert.ok(buf.subarray(0, 4096).every((b) => b === 0) && buf.subarray(4096).every((b) => b === 0x78));
  assert.equal((await vfs.getattr(ctx, ino)).attr.blocks, 8, 'one 4 KiB block of data left');
  await vfs.fallocate(ctx, ino, fh, 4096, 32768, FALLOC_FL_ZERO_RANGE);
  assert.equal((await vfs.getattr(ctx, ino)).attr.size, 36864);
  assert.equal((await vfs.getattr(ctx, ino)).attr.blocks, 0);
  await vfs.release(ctx, ino, fh, 0);
});

test('SEEK_DATA and SEEK_HOLE find the written ranges of a sparse file; st_blocks counts only them', async () => {
  const { vfs } = setup();
  const { ino, fh } = await createFile(vfs);
  await vfs.setattr(ctx, ino, { size: 10 * 2 ** 30 });
  assert.equal((await vfs.getattr(ctx, ino)).attr.blocks, 0, 'a sparse 10 GiB file holds no blocks');
  await vfs.write(ctx, ino, fh, 1 << 20, Buffer.alloc(4096, 1), 0);
  assert.equal(await vfs.lseek(ctx, ino, fh, 0, SEEK_DATA), 1 << 20);
  assert.equal(await vfs.lseek(ctx, ino, fh, 1 << 20, SEEK_HOLE), (1 << 20) + 4096);
  assert.equal(await vfs.lseek(ctx, ino, fh, 0, SEEK_HOLE), 0);
  assert.equal(await errno(vfs.lseek(ctx, ino, fh, 10 * 2 ** 30, SEEK_DATA)), E.ENXIO);
  assert.equal((await vfs.getattr(ctx, ino)).attr.blocks, 8);
  await vfs.release(ctx, ino, fh, 0);
});

test('copy_file_range goes through the data path copy, grows the destination, and refuses bad handles', async () => {
  const { vfs, data } = setup();
  const src = await createFile(vfs, 'src', 'abcdefgh');
  const dst = await createFile(vfs, 'dst');
  assert.equal(await vfs.copyFileRange(ctx, src.ino, src.fh, 2, dst.ino, dst.fh, 4, 100, 0), 6);
  assert.equal(data.copies, 1);
  assert.equal((await vfs.getattr(ctx, dst.ino)).attr.size, 10);
  const buf = Buffer.alloc(10);
  await vfs.read(ctx, dst.ino, dst.fh, 0, buf);
  assert.equal(buf.subarray(4).toString(), 'cdefgh');
  const ro = await vfs.open(ctx, dst.ino, O_RDONLY);
  assert.equal(await errno(vfs.copyFileRange(ctx, src.ino, src.fh, 0, dst.ino, ro.fh, 0, 4, 0)), E.EBADF);
  for (const f of [src, dst, { ino: dst.ino, fh: ro.fh }]) await vfs.release(ctx, f.ino, f.fh, 0);
});

test('O_DIRECT writes must be 512-byte aligned', async () => {
  const { vfs } = setup();
  const c = await vfs.create(ctx, ROOT_INO, 'd', 0o644, O_RDWR | O_DIRECT, 0);
  const ino = c.entry.attr.ino;
  assert.equal(await errno(vfs.write(ctx, ino, c.open.fh, 100, Buffer.alloc(512), 0)), E.EINVAL);
  assert.equal(await errno(vfs.write(ctx, ino, c.open.fh, 0, Buffer.alloc(100), 0)), E.EINVAL);
  assert.equal(await vfs.write(ctx, ino, c.open.fh, 512, Buffer.alloc(1024), 0), 1024);
  await vfs.release(ctx, ino, c.open.fh, 0);
});

test('a read-only mount refuses every change with EROFS but reads', async () => {
  const { vfs } = setup({ readOnly: true });
  assert.equal(await errno(vfs.create(ctx, ROOT_INO, 'f', 0o644, O_RDWR, 0)), E.EROFS);
  assert.equal(await errno(vfs.mkdir(ctx, ROOT_INO, 'd', 0o755, 0)), E.EROFS);
  assert.equal(await errno(vfs.setxattr(ctx, ROOT_INO, 'user.a', Buffer.from('1'), 0)), E.EROFS);
  assert.equal(await errno(vfs.setattr(ctx, ROOT_INO, { mode: 0o700 })), E.EROFS);
  const dir = await vfs.opendir(ctx, ROOT_INO, 0);
  assert.deepEqual((await vfs.readdir(ctx, ROOT_INO, dir.fh, 0, false)).map((e) => e.name), ['.', '..']);
});

test('errnos: long names, bad handles, missing names, xattrs', async () => {
  const { vfs } = setup();
  assert.equal(await errno(vfs.mkdir(ctx, ROOT_INO, 'n'.repeat(256), 0o755, 0)), E.ENAMETOOLONG);
  assert.equal(await errno(vfs.lookup(ctx, ROOT_INO, 'n'.repeat(256))), E.ENAMETOOLONG);
  assert.equal(await errno(vfs.read(ctx, ROOT_INO, 77, 0, Buffer.alloc(10))), E.EBADF);
  assert.equal(await errno(vfs.unlink(ctx, ROOT_INO, 'missing')), E.ENOENT);
  assert.equal(await errno(vfs.getxattr(ctx, ROOT_INO, 'user.none')), E.ENODATA);
  assert.equal(await errno(vfs.setxattr(ctx, ROOT_INO, `user.${'x'.repeat(260)}`, Buffer.alloc(1), 0)), E.ERANGE);
  await vfs.setxattr(ctx, ROOT_INO, 'user.k', Buffer.from('v'), 0);
  assert.deepEqual(await vfs.listxattr(ctx, ROOT_INO), ['user.k']);
  assert.equal((await vfs.getxattr(ctx, ROOT_INO, 'user.k')).toString(), 'v');
  const f = await createFile(vfs, 'f');
  assert.equal(await errno(vfs.opendir(ctx, f.ino, 0)), E.ENOTDIR);
  assert.equal(await errno(vfs.readlink(ctx, f.ino)), E.EINVAL);
  await vfs.release(ctx, f.ino, f.fh, 0);
});

test('statfs reports usage and the name limit', async () => {
  const { vfs } = setup();
  const { ino, fh } = await createFile(vfs);
  await vfs.write(ctx, ino, fh, 0, Buffer.alloc(3 << 20), 0);
  await vfs.flush(ctx, ino, fh);
  await vfs.release(ctx, ino, fh, 0);
  const s = await vfs.statfs(ctx, ROOT_INO);
  assert.equal(s.namelen, 255);
  assert.equal(s.blocks - s.bfree, 3);
});

test('a read blocked in the data path answers EINTR when the caller is interrupted', async () => {
  const { vfs, data } = setup();
  const { ino, fh } = await createFile(vfs, 'slow', 'abc');
  data.readInto = () => new Promise<number>(() => {}); // storage that never answers
  const ac = new AbortController();
  const read = vfs.read({ ...ctx, signal: ac.signal }, ino, fh, 0, Buffer.alloc(3));
  ac.abort();
  assert.equal(await errno(read), E.EINTR);
  await vfs.release(ctx, ino, fh, 0);
});

test('a read blocked in the data path answers EINTR through the server\'s onInterrupt listener, and a finished read unsubscribes', async () => {
  const { vfs, data } = setup();
  const { ino, fh } = await createFile(vfs, 'slow2', 'abc');
  const listeners = new Set<() => void>();
  const c = { ...ctx, onInterrupt: (fn: () => void) => (listeners.add(fn), () => listeners.delete(fn)) };
  assert.equal(await vfs.read(c, ino, fh, 0, Buffer.alloc(3)), 3);
  assert.equal(listeners.size, 0, 'a read that finished leaves no listener behind');
  data.readInto = () => new Promise<number>(() => {}); // storage that never answers
  const read = vfs.read(c, ino, fh, 0, Buffer.alloc(3));
  await new Promise((r) => setImmediate(r));
  assert.equal(listeners.size, 1);
  for (const fn of listeners) fn();
  assert.equal(await errno(read), E.EINTR);
  await vfs.release(ctx, ino, fh, 0);
});

test('GETXATTR of a missing name (the kernel asks security.capability before writes) costs one listXattr per inode and no GetInode', async () => {
  const { vfs, meta } = setup();
  const other = new Vfs(meta, new MemoryFileData(), { attrTimeoutMs: 30_000, entryTimeoutMs: 30_000 });
  const f = await createFile(vfs, 'f');
  await vfs.release(ctx, f.ino, f.fh, 0);
  const [gets, lists] = [meta.calls.get('getInode') ?? 0, meta.calls.get('listXattr') ?? 0];
  for (const name of ['security.capability', 'user.missing', 'security.capability']) {
    assert.equal(await errno(other.getxattr(ctx, f.ino, name)), E.ENODATA);
  }
  assert.equal(meta.calls.get('getInode') ?? 0, gets);
  assert.equal(meta.calls.get('listXattr') ?? 0, lists + 1);
  await other.setxattr(ctx, f.ino, 'user.k', Buffer.from('v'), 0);
  assert.equal((await other.getxattr(ctx, f.ino, 'user.k')).toString(), 'v', 'its own change is seen at once');
});

test("st_blocks comes from the metaserver's allocated-bytes counter when the inode has one (no slice read); else from the slices", async () => {
  const { vfs, meta } = setup();
  const f = await createFile(vfs, 'f', 'x'.repeat(10_000));
  await vfs.release(ctx, f.ino, f.fh, 0);
  const data = new MemoryFileData();
  let sliceReads = 0;
  data.allocatedBytes = async () => (sliceReads++, 1234);
  const getInode = meta.getInode.bind(meta);
  let counter: number | undefined = 4096;
  meta.getInode = async (ino) => ({ ...(await getInode(ino)), ...(counter !== undefined ? { allocatedBytes: counter } : {}) });
  const other = new Vfs(meta, data, { attrTimeoutMs: 30_000, entryTimeoutMs: 30_000, gatewayCacheMs: 0 });
  assert.equal((await other.getattr(ctx, f.ino)).attr.blocks, 8, 'from the counter');
  assert.equal(sliceReads, 0);
  counter = undefined; // an inode older than the counter
  assert.equal((await other.getattr(ctx, f.ino)).attr.blocks, Math.ceil(1234 / 512), 'from the slices');
  assert.equal(sliceReads, 1);
});

test('POSIX ACLs and SELinux labels are not supported (EOPNOTSUPP, so ls -l asks once per listing, not per entry)', async () => {
  const { vfs, meta } = setup();
  const f = await createFile(vfs, 'f');
  const before = [...meta.calls.values()].reduce((a, b) => a + b, 0);
  for (const name of ['security.selinux', 'system.posix_acl_access', 'system.posix_acl_default']) {
    assert.equal(await errno(vfs.getxattr(ctx, f.ino, name)), E.EOPNOTSUPP, name);
    assert.equal(await errno(vfs.setxattr(ctx, f.ino, name, Buffer.from('x'), 0)), E.EOPNOTSUPP, name);
    assert.equal(await errno(vfs.removexattr(ctx, f.ino, name)), E.EOPNOTSUPP, name);
  }
  assert.equal([...meta.calls.values()].reduce((a, b) => a + b, 0), before, 'answered without the metaserver');
  await vfs.release(ctx, f.ino, f.fh, 0);
});
