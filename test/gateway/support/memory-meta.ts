// An in-memory MetaClient with full POSIX namespace semantics. It stands in for the
// metaserver cluster under the gateway in tests, and doubles as a model of what the real
// one must do (nlink counts, rename cases, parent times, xattr flags, orphans).
import { StatusCode, TierfsError } from '../../../common/status.js';
import {
  MAX_NAME_BYTES, ROOT_INO, S_IFDIR, S_IFMT, S_IFREG,
  type CreateNodeOptions, type Dentry, type FsUsage, type Inode, type InodeAttr, type MetaClient, type ReleaseOptions,
  type RenameResult, type SetAttrChanges, type SliceRecord,
} from '../../../metaserver/meta-client.js';

interface MemInode extends Inode {
  xattrs: Map<string, Buffer>;
  slices: Map<number, SliceRecord[]>;
}

const XATTR_CREATE = 1;
const XATTR_REPLACE = 2;

function fail(code: StatusCode, message: string): never {
  throw new TierfsError(code, message);
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

export class MemoryMetaClient implements MetaClient {
  private readonly inodes = new Map<number, MemInode>();
  private readonly dirs = new Map<number, Map<string, Dentry>>();
  private nextIno = ROOT_INO + 1;
  /** Every call, for tests that check what reached the metadata service. */
  readonly calls = new Map<string, number>();

  constructor(rootUid = 0, rootGid = 0) {
    const now = Date.now();
    this.inodes.set(ROOT_INO, this.newInode(ROOT_INO, S_IFDIR | 0o755, rootUid, rootGid, now, 0, ''));
    this.inodes.get(ROOT_INO)!.nlink = 2;
    this.inodes.get(ROOT_INO)!.parents = [ROOT_INO];
    this.dirs.set(ROOT_INO, new Map());
  }

  private count(op: string): void {
    this.calls.set(op, (this.calls.get(op) ?? 0) + 1);
  }

  private newInode(ino: number, mode: number, uid: number, gid: number, now: number, rdev: number, symlink: string): MemInode {
    return {
      ino, mode, uid, gid, size: (mode & S_IFMT) === S_IFDIR ? 0 : symlink.length ? Buffer.byteLength(symlink) : 0,
      nlink: 1, rdev, atimeMs: now, mtimeMs: now, ctimeMs: now, symlink, parents: [],
      xattrs: new Map(), slices: new Map(), dataVersion: 0,
    };
  }

  private inode(ino: number): MemInode {
    return this.inodes.get(ino) ?? fail(StatusCode.NOT_FOUND, `inode ${ino} not found`);
  }

  private dir(ino: number): Map<string, Dentry> {
    const inode = this.inode(ino);
    if ((inode.mode & S_IFMT) !== S_IFDIR) fail(StatusCode.NOT_DIR, `inode ${ino} is not a directory`);
    return this.dirs.get(ino) ?? fail(StatusCode.NOT_FOUND, `directory ${ino} was removed`);
  }

  private checkName(name: string): void {
    if (Buffer.byteLength(name) > MAX_NAME_BYTES) fail(StatusCode.NAME_TOO_LONG, `name longer than ${MAX_NAME_BYTES} bytes`);
    if (name === '' || name === '.' || name === '..' || name.includes('/')) fail(StatusCode.INVALID_ARGUMENT, `bad name ${JSON.stringify(name)}`);
  }

  /** A change of the directory's names: times, and the count the metaserver keeps (entriesVersion). */
  private touchDir(ino: number, now: number): void {
    const d = this.inode(ino);
    d.mtimeMs = now;
    d.ctimeMs = now;
    d.entriesVersion = (d.entriesVersion ?? 0) + 1;
  }

  private copy(inode: MemInode): Inode {
    const { xattrs: _x, slices: _s, ...rest } = inode;
    return { ...rest, parents: [...rest.parents] };
  }

  private attrOf(inode: MemInode): InodeAttr {
    const { ino, mode, uid, gid, size, nlink, rdev, atimeMs, mtimeMs, ctimeMs } = inode;
    return { ino, mode, uid, gid, size, nlink, rdev, atimeMs, mtimeMs, ctimeMs };
  }

  async lookup(parent: number, name: string): Promise<Dentry> {
    this.count('lookup');
    if (Buffer.byteLength(name) > MAX_NAME_BYTES) fail(StatusCode.NAME_TOO_LONG, 'name too long');
    const d = this.dir(parent).get(name) ?? fail(StatusCode.NOT_FOUND, `${name} not found in ${parent}`);
    return { ...d };
  }

  async listDentries(parent: number, last: string, count: number): Promise<Dentry[]> {
    this.count('listDentries');
    const names = [...this.dir(parent).keys()].sort(byteOrder).filter((n) => last === '' || byteOrder(n, last) > 0);
    return names.slice(0, count).map((n) => ({ ...this.dirs.get(parent)!.get(n)! }));
  }

  /** The inode without counting a call (for doubles that return inodes alongside other results). */
  peekInode(ino: number): Inode {
    return this.copy(this.inode(ino));
  }

  async getInode(ino: number): Promise<Inode> {
    this.count('getInode');
    return this.copy(this.inode(ino));
  }

  async batchGetAttr(inos: number[]): Promise<InodeAttr[]> {
    this.count('batchGetAttr');
    return inos.flatMap((ino) => (this.inodes.has(ino) ? [this.attrOf(this.inodes.get(ino)!)] : []));
  }

  async batchGetInodes(inos: number[]): Promise<Inode[]> {
    this.count('batchGetInodes');
    return inos.flatMap((ino) => (this.inodes.has(ino) ? [this.copy(this.inodes.get(ino)!)] : []));
  }

  async createNode(parent: number, name: string, opts: CreateNodeOptions): Promise<Inode> {
    this.count('createNode');
    this.checkName(name);
    const entries = this.dir(parent);
    const existing = entries.get(name);
    const type = opts.mode & S_IFMT;
    if (existing) {
      if (opts.exclusive || type !== S_IFREG) fail(StatusCode.EXISTS, `${name} exists`);
      return this.copy(this.inode(existing.ino));
    }
    const now = Date.now();
    const ino = this.nextIno++;
    const inode = this.newInode(ino, opts.mode, opts.uid, opts.gid, now, opts.rdev ?? 0, opts.symlink ?? '');
    inode.parents = [parent];
    if (type === S_IFDIR) {
      inode.nlink = 2;
      this.dirs.set(ino, new Map());
      this.inode(parent).nlink++;
    }
    this.inodes.set(ino, inode);
    entries.set(name, { parent, name, ino, type });
    this.touchDir(parent, now);
    return this.copy(inode);
  }

  /** As RemoteMetaClient: the parent as the create left it, and whether the node is new. */
  async createNodeWithParent(parent: number, name: string, opts: CreateNodeOptions): Promise<{ inode: Inode; parent?: Inode; created?: boolean }> {
    const existed = this.dirs.get(parent)?.has(name) ?? false;
    const inode = await this.createNode(parent, name, opts);
    return existed ? { inode, created: false } : { inode, parent: this.copy(this.inode(parent)), created: true };
  }

  async link(ino: number, parent: number, name: string): Promise<Inode> {
    this.count('link');
    this.checkName(name);
    const inode = this.inode(ino);
    if ((inode.mode & S_IFMT) === S_IFDIR) fail(StatusCode.PERMISSION_DENIED, 'hard link to a directory');
    const entries = this.dir(parent);
    if (entries.has(name)) fail(StatusCode.EXISTS, `${name} exists`);
    const now = Date.now();
    entries.set(name, { parent, name, ino, type: inode.mode & S_IFMT });
    inode.nlink++;
    inode.parents.push(parent);
    inode.ctimeMs = now;
    this.touchDir(parent, now);
    return this.copy(inode);
  }

  private dropLink(inode: MemInode, parent: number, now: number): void {
    inode.nlink--;
    const i = inode.parents.indexOf(parent);
    if (i >= 0) inode.parents.splice(i, 1);
    inode.ctimeMs = now;
  }

  async unlink(parent: number, name: string, opts: ReleaseOptions = {}): Promise<Inode> {
    this.count('unlink');
    const entries = this.dir(parent);
    const d = entries.get(name) ?? fail(StatusCode.NOT_FOUND, `${name} not found`);
    if (d.type === S_IFDIR) fail(StatusCode.IS_DIR, `${name} is a directory`);
    const inode = this.inode(d.ino);
    const now = Date.now();
    entries.delete(name);
    this.dropLink(inode, parent, now);
    this.touchDir(parent, now);
    const after = this.copy(inode);
    // As the metaserver's RemoveNode: the named inode goes to the trash in the same step.
    if (inode.nlink === 0 && opts.releaseIno === inode.ino) this.inodes.delete(inode.ino);
    return after;
  }

  async rmdir(parent: number, name: string): Promise<void> {
    this.count('rmdir');
    const entries = this.dir(parent);
    const d = entries.get(name) ?? fail(StatusCode.NOT_FOUND, `${name} not found`);
    if (d.type !== S_IFDIR) fail(StatusCode.NOT_DIR, `${name} is not a directory`);
    if (this.dirs.get(d.ino)!.size > 0) fail(StatusCode.NOT_EMPTY, `${name} is not empty`);
    entries.delete(name);
    this.dirs.delete(d.ino);
    this.inodes.delete(d.ino);
    this.inode(parent).nlink--;
    this.touchDir(parent, Date.now());
  }

  private isAncestor(ancestor: number, ino: number): boolean {
    for (let cur = ino; ; ) {
      if (cur === ancestor) return true;
      if (cur === ROOT_INO) return false;
      cur = this.inode(cur).parents[0] ?? ROOT_INO;
    }
  }

  async rename(srcParent: number, srcName: string, dstParent: number, dstName: string): Promise<RenameResult> {
    this.count('rename');
    this.checkName(dstName);
    const srcEntries = this.dir(srcParent);
    const dstEntries = this.dir(dstParent);
    const src = srcEntries.get(srcName) ?? fail(StatusCode.NOT_FOUND, `${srcName} not found`);
    const dst = dstEntries.get(dstName);
    if (dst && dst.ino === src.ino) return {};
    const srcIsDir = src.type === S_IFDIR;
    if (srcIsDir && this.isAncestor(src.ino, dstParent)) fail(StatusCode.INVALID_ARGUMENT, 'cannot move a directory into itself');
    if (dst) {
      if (srcIsDir && dst.type !== S_IFDIR) fail(StatusCode.NOT_DIR, `${dstName} is not a directory`);
      if (!srcIsDir && dst.type === S_IFDIR) fail(StatusCode.IS_DIR, `${dstName} is a directory`);
      if (dst.type === S_IFDIR && this.dirs.get(dst.ino)!.size > 0) fail(StatusCode.NOT_EMPTY, `${dstName} is not empty`);
    }
    const now = Date.now();
    let replaced: RenameResult['replaced'];
    if (dst) {
      if (dst.type === S_IFDIR) {
        this.dirs.delete(dst.ino);
        this.inodes.delete(dst.ino);
        this.inode(dstParent).nlink--;
        replaced = { ino: dst.ino, nlink: 0, type: dst.type };
      } else {
        const victim = this.inode(dst.ino);
        this.dropLink(victim, dstParent, now);
        replaced = { ino: dst.ino, nlink: victim.nlink, type: dst.type };
      }
    }
    srcEntries.delete(srcName);
    dstEntries.set(dstName, { parent: dstParent, name: dstName, ino: src.ino, type: src.type });
    const moved = this.inode(src.ino);
    const i = moved.parents.indexOf(srcParent);
    if (i >= 0) moved.parents[i] = dstParent;
    moved.ctimeMs = now;
    if (srcIsDir && srcParent !== dstParent) {
      this.inode(srcParent).nlink--;
      this.inode(dstParent).nlink++;
    }
    this.touchDir(srcParent, now);
    this.touchDir(dstParent, now);
    return replaced ? { replaced } : {};
  }

  /** RENAME_EXCHANGE: both names must exist; they swap targets (parent lists, dir nlinks follow). */
  async exchange(srcParent: number, srcName: string, dstParent: number, dstName: string): Promise<void> {
    this.count('exchange');
    const srcEntries = this.dir(srcParent);
    const dstEntries = this.dir(dstParent);
    const a = srcEntries.get(srcName) ?? fail(StatusCode.NOT_FOUND, `${srcName} not found`);
    const b = dstEntries.get(dstName) ?? fail(StatusCode.NOT_FOUND, `${dstName} not found`);
    if (a.ino === b.ino) return;
    if (a.type === S_IFDIR && this.isAncestor(a.ino, dstParent)) fail(StatusCode.INVALID_ARGUMENT, 'cannot move a directory into itself');
    if (b.type === S_IFDIR && this.isAncestor(b.ino, srcParent)) fail(StatusCode.INVALID_ARGUMENT, 'cannot move a directory into itself');
    const now = Date.now();
    srcEntries.set(srcName, { parent: srcParent, name: srcName, ino: b.ino, type: b.type });
    dstEntries.set(dstName, { parent: dstParent, name: dstName, ino: a.ino, type: a.type });
    const move = (ino: number, from: number, to: number, type: number) => {
      const inode = this.inode(ino);
      const i = inode.parents.indexOf(from);
      if (i >= 0) inode.parents[i] = to;
      inode.ctimeMs = now;
      if (type === S_IFDIR && from !== to) {
        this.inode(from).nlink--;
        this.inode(to).nlink++;
      }
    };
    move(a.ino, srcParent, dstParent, a.type);
    move(b.ino, dstParent, srcParent, b.type);
    this.touchDir(srcParent, now);
    this.touchDir(dstParent, now);
  }

  async setAttr(ino: number, changes: SetAttrChanges): Promise<Inode> {
    this.count('setAttr');
    const inode = this.inode(ino);
    if (changes.mode !== undefined) inode.mode = (inode.mode & S_IFMT) | (changes.mode & 0o7777);
    if (changes.uid !== undefined) inode.uid = changes.uid;
    if (changes.gid !== undefined) inode.gid = changes.gid;
    if (changes.size !== undefined) {
      inode.size = changes.sizeGrowOnly ? Math.max(inode.size, changes.size) : changes.size;
      inode.dataVersion = (inode.dataVersion ?? 0) + 1;
    }
    if (changes.atimeMs !== undefined) inode.atimeMs = changes.atimeMs;
    if (changes.mtimeMs !== undefined) inode.mtimeMs = changes.mtimeMs;
    inode.ctimeMs = changes.ctimeMs ?? Date.now();
    return this.copy(inode);
  }

  async getXattr(ino: number, name: string): Promise<Buffer> {
    this.count('getXattr');
    const v = this.inode(ino).xattrs.get(name) ?? fail(StatusCode.NO_DATA, `no xattr ${name}`);
    return Buffer.from(v);
  }

  async listXattr(ino: number): Promise<string[]> {
    this.count('listXattr');
    return [...this.inode(ino).xattrs.keys()];
  }

  async setXattr(ino: number, name: string, value: Buffer, flags: number): Promise<void> {
    this.count('setXattr');
    const inode = this.inode(ino);
    if (flags & XATTR_CREATE && inode.xattrs.has(name)) fail(StatusCode.EXISTS, `xattr ${name} exists`);
    if (flags & XATTR_REPLACE && !inode.xattrs.has(name)) fail(StatusCode.NO_DATA, `no xattr ${name}`);
    inode.xattrs.set(name, Buffer.from(value));
    inode.ctimeMs = Date.now();
  }

  async removeXattr(ino: number, name: string): Promise<void> {
    this.count('removeXattr');
    const inode = this.inode(ino);
    if (!inode.xattrs.delete(name)) fail(StatusCode.NO_DATA, `no xattr ${name}`);
    inode.ctimeMs = Date.now();
  }

  async getSlices(ino: number): Promise<Map<number, SliceRecord[]>> {
    const out = new Map<number, SliceRecord[]>();
    for (const [k, v] of this.inode(ino).slices) out.set(k, v.map((s) => ({ ...s })));
    return out;
  }

  async appendSlices(ino: number, added: Map<number, SliceRecord[]>): Promise<void> {
    const inode = this.inode(ino);
    for (const [k, v] of added) inode.slices.set(k, [...(inode.slices.get(k) ?? []), ...v.map((s) => ({ ...s }))]);
    inode.dataVersion = (inode.dataVersion ?? 0) + 1;
  }

  async replaceSlices(ino: number, chunkIndex: number, removed: SliceRecord[], added: SliceRecord[]): Promise<void> {
    const slices = this.inode(ino).slices;
    const cur = slices.get(chunkIndex) ?? [];
    const key = (s: SliceRecord) => `${s.chunkId}/${s.compaction}/${s.offset}/${s.len}`;
    const present = new Set(cur.map(key));
    if (!removed.every((s) => present.has(key(s)))) fail(StatusCode.TX_CONFLICT, 'slices changed since they were read');
    const gone = new Set(removed.map(key));
    slices.set(chunkIndex, [...cur.filter((s) => !gone.has(key(s))), ...added]);
  }

  async releaseOrphan(ino: number): Promise<void> {
    this.count('releaseOrphan');
    const inode = this.inodes.get(ino);
    if (inode && inode.nlink === 0) this.inodes.delete(ino);
  }

  async usage(): Promise<FsUsage> {
    let usedBytes = 0;
    for (const inode of this.inodes.values()) if ((inode.mode & S_IFMT) === S_IFREG) usedBytes += inode.size;
    return { inodes: this.inodes.size, usedBytes };
  }

  /** Inodes that still exist (tests check that orphans were released). */
  inodeCount(): number {
    return this.inodes.size;
  }

  async close(): Promise<void> {}
}
