// dumpTree over a source whose copysets were read at different instants: a name whose inode
// the source lacks (its create landed in another copyset after that copyset's read) is left
// out and counted, and the walk still writes a tree the loader accepts line by line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dumpTree, type DumpHeader, type DumpInode, type DumpLine, type DumpSource } from '../../metaserver/dump.js';
import { ROOT_INO, S_IFDIR, S_IFREG, type Dentry } from '../../metaserver/meta-client.js';

const inode = (ino: number, mode: number): DumpInode => ({
  type: 'inode', ino, mode, uid: 0, gid: 0, size: 0, nlink: 1, rdev: 0, atimeMs: 1, mtimeMs: 1, ctimeMs: 1, symlink: '', xattrs: {}, chunks: [],
});

const header: DumpHeader = { type: 'header', version: 1, fs: 'f', fsId: 1, blockSize: 1, chunkSize: 1, bucket: 'b', keyPrefix: '', dumpedAt: '' };

test('a name whose inode is not in the dump is left out and counted; the rest is walked breadth-first', async () => {
  const inodes = new Map([[ROOT_INO, inode(ROOT_INO, S_IFDIR | 0o755)], [2, inode(2, S_IFDIR | 0o755)], [3, inode(3, S_IFREG | 0o644)]]);
  const names = new Map<number, Dentry[]>([
    [ROOT_INO, [{ parent: ROOT_INO, name: 'd', ino: 2, type: S_IFDIR }, { parent: ROOT_INO, name: 'ghost', ino: 9, type: S_IFREG }]],
    [2, [{ parent: 2, name: 'f', ino: 3, type: S_IFREG }, { parent: 2, name: 'hard', ino: 3, type: S_IFREG }]],
  ]);
  const src: DumpSource = {
    inodeLine: async (ino) => inodes.get(ino) ?? null,
    listDentries: async (dir, last, count) => (names.get(dir) ?? []).filter((d) => d.name > last).slice(0, count),
  };
  const lines: DumpLine[] = [];
  const done = await dumpTree(src, header, async (l) => void lines.push(l));
  assert.deepEqual(done, { inodes: 3, dentries: 3, skipped: 1 });
  assert.deepEqual(lines.map((l) => (l.type === 'dentry' ? `${l.parent}/${l.name}` : l.type === 'inode' ? `inode ${l.ino}` : l.type)), [
    'header', 'inode 1', 'inode 2', '1/d', 'inode 3', '2/f', '2/hard', 'end',
  ]);
  assert.deepEqual(lines.at(-1), { type: 'end', inodes: 3, dentries: 3 });
});
