// Metadata backup (issue 16): `tierfs dump` writes every inode, dentry, xattr and slice list
// of a filesystem as JSON lines, `tierfs load` rebuilds the tree in an empty filesystem on the
// same bucket. Loaded files share the dumped filesystem's objects (each slice becomes a
// reference to the original slice, SliceRef.fsId naming the dumped fs): nothing is copied.
//
// The dump is point-in-time per copyset: it is walked from records every copyset streamed as
// they were at one Raft index (dump-snapshot.ts; the header lists the indexes).
//
// Format, one JSON object per line (gzip when the file name ends in .gz):
//   {"type":"header","version":1,"fs":NAME,"fsId":N,"blockSize":N,"chunkSize":N,"bucket":B,"keyPrefix":P,"dumpedAt":ISO,
//    "copysets":[{"pool":N,"copyset":N,"appliedIndex":N,"partitions":[N...]}...]}
//   {"type":"inode","ino":N,"mode":N,"uid":N,"gid":N,"size":N,"nlink":N,"rdev":N,"atimeMs":N,"mtimeMs":N,
//    "ctimeMs":N,"symlink":S,"xattrs":{NAME:BASE64},"chunks":[[INDEX,[SLICE...]]...]}
//   {"type":"dentry","parent":INO,"name":S,"ino":INO}
//   {"type":"end","inodes":N,"dentries":N}
// An inode line comes before the first dentry naming it; the root (inode 1) comes first.
import { StatusCode, TierfsError } from '../common/status.js';
import { ROOT_INO, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, type Dentry, type Inode, type MetaClient, type SliceRecord } from './meta-client.js';

export interface DumpHeader {
  type: 'header';
  version: 1;
  fs: string;
  fsId: number;
  blockSize: number;
  chunkSize: number;
  bucket: string;
  keyPrefix: string;
  dumpedAt: string;
  /** Each copyset's records are its state at this Raft index (dump-snapshot.ts says what that guarantees). */
  copysets?: Array<{ pool: number; copyset: number; appliedIndex: number; partitions: number[] }>;
}

export interface DumpInode extends Omit<Inode, 'parents' | 'xattrNames'> {
  type: 'inode';
  xattrs: Record<string, string>;
  chunks: Array<[number, SliceRecord[]]>;
}

export interface DumpDentry {
  type: 'dentry';
  parent: number;
  name: string;
  ino: number;
}

export type DumpLine = DumpHeader | DumpInode | DumpDentry | { type: 'end'; inodes: number; dentries: number };

/** What the walk reads: a filesystem's records at one point (dump-snapshot.ts `FsSnapshot`). */
export interface DumpSource {
  /** The inode's line; null when the records hold no such inode (a name taken at another instant than its inode). */
  inodeLine(ino: number): Promise<DumpInode | null>;
  /** Up to `count` names of directory `dir` after `last`, in name order. */
  listDentries(dir: number, last: string, count: number): Promise<Dentry[]>;
}

/**
 * Walks the tree breadth-first and hands out each line; `onInode` counts progress. A name
 * whose inode the source lacks is left out and counted in `skipped`.
 */
export async function dumpTree(src: DumpSource, header: DumpHeader, write: (line: DumpLine) => Promise<void>, onInode?: (n: number) => void): Promise<{ inodes: number; dentries: number; skipped: number }> {
  await write(header);
  const root = await src.inodeLine(ROOT_INO);
  if (!root) throw new TierfsError(StatusCode.NOT_FOUND, `filesystem ${header.fs} has no root inode in its metadata`);
  const seen = new Set<number>([ROOT_INO]);
  await write(root);
  let inodes = 1;
  let dentries = 0;
  let skipped = 0;
  onInode?.(inodes);
  const queue = [ROOT_INO];
  while (queue.length > 0) {
    const dir = queue.shift()!;
    for (let last = ''; ; ) {
      const page = await src.listDentries(dir, last, 1000);
      for (const d of page) {
        if (!seen.has(d.ino)) {
          const line = await src.inodeLine(d.ino);
          if (!line) {
            skipped++;
            continue;
          }
          seen.add(d.ino);
          await write(line);
          inodes++; // not inside onInode?.(): an absent callback would skip the count
          onInode?.(inodes);
          if ((d.type & S_IFMT) === S_IFDIR) queue.push(d.ino);
        }
        await write({ type: 'dentry', parent: dir, name: d.name, ino: d.ino });
        dentries++;
      }
      if (page.length < 1000) break;
      last = page[page.length - 1]!.name;
    }
  }
  await write({ type: 'end', inodes, dentries });
  return { inodes, dentries, skipped };
}

/** A slice of the dumped file as the loaded file reads it: a reference to the original's objects. */
function shared(s: SliceRecord, fsId: number, ino: number, chunkIndex: number): SliceRecord {
  if (s.zero) return { ...s, shared: false };
  if (s.ref) return { ...s, shared: false, ref: { ...s.ref, fsId: s.ref.fsId ?? fsId } };
  return {
    chunkId: s.chunkId, compaction: s.compaction, offset: s.offset, len: s.len, size: s.size, zero: false,
    ref: { fsId, ino, chunkIndex, chunkId: s.chunkId, compaction: s.compaction, offset: s.offset, len: s.len, pos: s.offset },
  };
}

/** Rebuilds a dump in an empty filesystem: names, links, symlinks, xattrs, slices, then attributes. */
export class TreeLoader {
  private header: DumpHeader | null = null;
  /** Dumped inode -> its line, until its first name creates it. */
  private readonly pending = new Map<number, DumpInode>();
  /** Dumped inode -> loaded inode. */
  private readonly created = new Map<number, number>([[ROOT_INO, ROOT_INO]]);
  private readonly attrs: Array<[number, DumpInode]> = [];
  inodes = 0;
  dentries = 0;
  ended = false;

  constructor(private readonly meta: MetaClient) {}

  static async checkEmpty(meta: MetaClient): Promise<void> {
    const names = await meta.listDentries(ROOT_INO, '', 1);
    if (names.length > 0) throw new TierfsError(StatusCode.NOT_EMPTY, `the filesystem is not empty (it has /${names[0]!.name}); load needs an empty one`);
  }

  async line(l: DumpLine): Promise<void> {
    if (l.type === 'header') {
      if (l.version !== 1) throw new TierfsError(StatusCode.INVALID_ARGUMENT, `dump format version ${String(l.version)} is not known`);
      this.header = l;
      return;
    }
    if (!this.header) throw new TierfsError(StatusCode.INVALID_ARGUMENT, 'the dump does not start with its header line');
    if (l.type === 'end') {
      if (l.inodes !== this.inodes || l.dentries !== this.dentries) {
        throw new TierfsError(StatusCode.INVALID_ARGUMENT, `the dump is damaged: ${this.inodes} inodes and ${this.dentries} names read, its end line says ${l.inodes} and ${l.dentries}`);
      }
      this.ended = true;
      return;
    }
    if (l.type === 'inode') {
      this.inodes++;
      if (l.ino === ROOT_INO) await this.fill(ROOT_INO, l);
      else this.pending.set(l.ino, l);
      return;
    }
    this.dentries++;
    const parent = this.created.get(l.parent);
    if (parent === undefined) throw new TierfsError(StatusCode.INVALID_ARGUMENT, `dentry ${l.name} names parent ${l.parent} before its inode`);
    const known = this.created.get(l.ino);
    if (known !== undefined) {
      await this.meta.link(known, parent, l.name); // another name of a hard-linked file
      return;
    }
    const rec = this.pending.get(l.ino);
    if (!rec) throw new TierfsError(StatusCode.INVALID_ARGUMENT, `dentry ${l.name} names inode ${l.ino} before its inode line`);
    this.pending.delete(l.ino);
    const inode = await this.meta.createNode(parent, l.name, {
      mode: rec.mode, uid: rec.uid, gid: rec.gid, rdev: rec.rdev, exclusive: true,
      ...((rec.mode & S_IFMT) === S_IFLNK ? { symlink: rec.symlink } : {}),
    });
    this.created.set(l.ino, inode.ino);
    await this.fill(inode.ino, rec);
  }

  private async fill(ino: number, rec: DumpInode): Promise<void> {
    for (const [name, value] of Object.entries(rec.xattrs)) await this.meta.setXattr(ino, name, Buffer.from(value, 'base64'), 0);
    if (rec.chunks.length > 0) {
      const fsId = this.header!.fsId;
      await this.meta.appendSlices(ino, new Map(rec.chunks.map(([index, slices]) => [index, slices.map((s) => shared(s, fsId, rec.ino, index))])));
    }
    this.attrs.push([ino, rec]);
  }

  /** Sizes, modes, owners and times, once every name exists (adding names changes a directory's times). */
  async finish(): Promise<void> {
    if (!this.ended) throw new TierfsError(StatusCode.INVALID_ARGUMENT, 'the dump ends before its end line (truncated?)');
    for (const [ino, r] of this.attrs) {
      await this.meta.setAttr(ino, {
        mode: r.mode & 0o7777, uid: r.uid, gid: r.gid, atimeMs: r.atimeMs, mtimeMs: r.mtimeMs, ctimeMs: r.ctimeMs,
        ...((r.mode & S_IFMT) === S_IFREG ? { size: r.size } : {}),
      });
    }
  }

  get dumpHeader(): DumpHeader | null {
    return this.header;
  }
}
