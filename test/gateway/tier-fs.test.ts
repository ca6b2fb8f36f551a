// The POSIX layer without FUSE: what it asks of the metaserver (orphans released at the
// last close, hidden names), dirty sizes before commit, read-only mounts, errnos.
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { test } from 'node:test';
import { errnoOf } from '../../gateway/errors.js';
import { TierFileSystem } from '../../gateway/tier-fs.js';
import { MemoryFileData } from './support/memory-file-data.js';
import { MemoryMetaClient } from './support/memory-meta.js';

const E = constants.errno;
const O_RDWR = 2;
const HIDDEN = '/.fuse_hidden0000000a00000001';

function setup(readOnly = false) {
  const meta = new MemoryMetaClient();
  const data = new MemoryFileData();
  const fs = new TierFileSystem(meta, data, { attrTimeoutMs: 1000, entryTimeoutMs: 1000, readOnly, deleteOrphanData: true });
  return { meta, data, fs };
}

async function errno(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (err) {
    return errnoOf(err);
  }
  throw new Error('expected a failure');
}

test('unlink without open handles releases the inode at once', async () => {
  const { meta, fs } = setup();
  const fh = await fs.create('/f', 0o644);
  await fs.write(fh, 0, Buffer.from('abc'));
  await fs.flush(fh);
  await fs.release(fh);
  const before = meta.inodeCount();
  await fs.unlink('/f');
  assert.equal(meta.calls.get('releaseOrphan'), 1);
  assert.equal(meta.inodeCount(), before - 1);
});

test('a file hidden by libfuse while open stays readable, is not listed, and is released at the last close', async () => {
  const { meta, fs } = setup();
  const fh = await fs.create('/f', 0o644);
  await fs.write(fh, 0, Buffer.from('still here'));
  await fs.rename('/f', HIDDEN);
  assert.deepEqual((await fs.readdir('/')).map((e) => e.name), ['.', '..']);
  assert.equal((await fs.getattr(HIDDEN)).nlink, 0);
  assert.equal((await fs.read(fh, 0, 100)).toString(), 'still here');
  assert.equal(await errno(fs.getattr('/f')), E.ENOENT);
  assert.equal(meta.calls.get('releaseOrphan') ?? 0, 0);
  await fs.release(fh);
  assert.equal(meta.calls.get('releaseOrphan'), 1);
  // libfuse unlinks the hidden name after the release: already gone, harmless.
  assert.equal(await errno(fs.unlink(HIDDEN)), E.ENOENT);
  assert.equal(fs.stats().hiddenFiles, 0);
});

test('a rename to a hidden-looking name of a file that is not open is an ordinary rename', async () => {
  const { fs } = setup();
  await fs.release(await fs.create('/f', 0o644));
  await fs.rename('/f', HIDDEN);
  assert.deepEqual((await fs.readdir('/')).map((e) => e.name), ['.', '..', HIDDEN.slice(1)]);
});

test('writes show their size at once and commit it to the metaserver at flush', async () => {
  const { meta, fs } = setup();
  const fh = await fs.create('/f', 0o644);
  await fs.write(fh, 1000, Buffer.alloc(24, 1));
  assert.equal((await fs.getattr('/f')).size, 1024);
  const ino = await fs.resolve('/f');
  assert.equal((await meta.getInode(ino)).size, 0);
  await fs.flush(fh);
  assert.equal((await meta.getInode(ino)).size, 1024);
  await fs.ftruncate(fh, 10);
  assert.equal((await meta.getInode(ino)).size, 10);
  await fs.release(fh);
});

test('a read-only mount refuses every change with EROFS but reads', async () => {
  const { fs } = setup(true);
  assert.equal(await errno(fs.create('/f', 0o644)), E.EROFS);
  assert.equal(await errno(fs.mkdir('/d', 0o755)), E.EROFS);
  assert.equal(await errno(fs.openFile('/', O_RDWR)), E.EROFS);
  assert.equal(await errno(fs.setxattr('/', 'user.a', Buffer.from('1'), 0)), E.EROFS);
  assert.equal(await errno(fs.chmod('/', 0o700)), E.EROFS);
  assert.deepEqual((await fs.readdir('/')).map((e) => e.name), ['.', '..']);
});

test('errnos: long names, bad handles, missing paths, xattr names', async () => {
  const { fs } = setup();
  assert.equal(await errno(fs.mkdir(`/${'n'.repeat(256)}`, 0o755)), E.ENAMETOOLONG);
  assert.equal(await errno(fs.getattr(`/${'n'.repeat(256)}`)), E.ENAMETOOLONG);
  assert.equal(await errno(fs.read(77, 0, 10)), E.EBADF);
  assert.equal(await errno(fs.unlink('/missing/x')), E.ENOENT);
  assert.equal(await errno(fs.getxattr('/', 'user.none')), E.ENODATA);
  assert.equal(await errno(fs.setxattr('/', `user.${'x'.repeat(260)}`, Buffer.alloc(1), 0)), E.ERANGE);
  await fs.release(await fs.create('/f', 0o644));
  assert.equal(await errno(fs.readdir('/f')), E.ENOTDIR);
  assert.equal(await errno(fs.readlink('/f')), E.EINVAL);
});

test('statfs reports usage and the name limit', async () => {
  const { fs } = setup();
  const fh = await fs.create('/f', 0o644);
  await fs.write(fh, 0, Buffer.alloc(3 << 20));
  await fs.flush(fh);
  await fs.release(fh);
  const s = await fs.statfs();
  assert.equal(s.namemax, 255);
  assert.equal(s.blocks - s.bfree, 3);
});

/** Like RemoteMetaClient: creates return the changed parent, lookups carry the child's inode. */
class InlineAttrsMeta extends MemoryMetaClient {
  async createNodeWithParent(parent: number, name: string, opts: Parameters<MemoryMetaClient['createNode']>[2]) {
    const inode = await this.createNode(parent, name, opts);
    return { inode, parent: this.peekInode(parent) };
  }

  override async lookup(parent: number, name: string) {
    const d = await super.lookup(parent, name);
    return { ...d, inode: this.peekInode(d.ino) };
  }
}

test('attributes returned by create and lookup fill the attr cache: no getInode for them', async () => {
  const meta = new InlineAttrsMeta();
  const fs = new TierFileSystem(meta, new MemoryFileData(), { attrTimeoutMs: 1000, entryTimeoutMs: 1000 });
  await fs.mkdir('/d', 0o755);
  const fh = await fs.create('/d/f', 0o644);
  await fs.release(fh);
  const getInodes = meta.calls.get('getInode') ?? 0;
  const dir = await fs.getattr('/d');
  assert.equal(dir.nlink, 2);
  assert.equal(dir.mtimeMs, meta.peekInode(dir.ino).mtimeMs, 'the parent as the create left it');
  assert.equal((await fs.getattr('/')).nlink, 3);
  assert.equal(meta.calls.get('getInode') ?? 0, getInodes);
  // A second mount looks the names up: the attributes come with the names.
  const other = new TierFileSystem(meta, new MemoryFileData(), { attrTimeoutMs: 1000, entryTimeoutMs: 1000 });
  const f = await other.getattr('/d/f');
  assert.equal(f.ino, meta.peekInode(f.ino).ino);
  assert.equal(meta.calls.get('getInode') ?? 0, getInodes);
});
