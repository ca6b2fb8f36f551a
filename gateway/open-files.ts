// Open file handles and the per-inode state they share: how many handles are open and the
// size and times written locally but not yet committed to the metaserver. The kernel names
// an open file by inode and handle, so an unlinked open file needs nothing beyond this.
import type { Inode } from '../metaserver/meta-client.js';
import { posix, E } from './errors.js';

export interface DirtyAttrs {
  /** The size as this mount sees it. */
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  /**
   * The end of what was written since the last commit: the commit grows the file to at least
   * this (never to `size`, which may hold a size another mount has since truncated).
   */
  end: number;
}

export interface OpenInode {
  ino: number;
  handles: number;
  /** Size/times changed by writes since the last commit; null when in sync. */
  dirty: DirtyAttrs | null;
  /**
   * Attributes revalidated at the first open and kept current by this mount's own changes
   * (close-to-open): reads and writes of an open file need no metadata round trip.
   */
  inode: Inode;
}

export interface FileHandle {
  fh: number;
  ino: number;
  flags: number;
  writable: boolean;
  readable: boolean;
  /** O_DIRECT: writes must be 512-byte aligned in offset and length, as on ext4. */
  direct: boolean;
  /** O_APPEND: every write goes at the end of the file as the metaserver finds it (append-runs.ts). */
  append: boolean;
}

const O_ACCMODE = 3;
const O_RDONLY = 0;
const O_WRONLY = 1;
export const O_DIRECT = 0o40000;
export const O_APPEND = 0o2000;

/** FUSE treats fh 0 as "no handle", so handles start at 1 and skip 0 when they wrap. */
const MAX_FH = 0x7fffffff;

export class OpenFileTable {
  private readonly handles = new Map<number, FileHandle>();
  private readonly inodes = new Map<number, OpenInode>();
  private nextFh = 1;

  constructor(private readonly maxHandles = 1_000_000) {}

  open(ino: number, flags: number, inode: Inode): FileHandle {
    if (this.handles.size >= this.maxHandles) throw posix(E.ENFILE, `too many open files on this mount (${this.maxHandles})`);
    while (this.handles.has(this.nextFh)) this.nextFh = this.nextFh >= MAX_FH ? 1 : this.nextFh + 1;
    const fh = this.nextFh;
    this.nextFh = this.nextFh >= MAX_FH ? 1 : this.nextFh + 1;
    const acc = flags & O_ACCMODE;
    const handle: FileHandle = { fh, ino, flags, readable: acc !== O_WRONLY, writable: acc !== O_RDONLY, direct: (flags & O_DIRECT) !== 0,
      append: (flags & O_APPEND) !== 0 && acc !== O_RDONLY };
    this.handles.set(fh, handle);
    const state = this.inodes.get(ino) ?? { ino, handles: 0, dirty: null, inode };
    state.handles++;
    this.inodes.set(ino, state);
    return handle;
  }

  handle(fh: number): FileHandle {
    return this.handles.get(fh) ?? (() => {
      throw posix(E.EBADF, `file handle ${fh} is not open`);
    })();
  }

  /** Closes a handle; returns the inode state when this was its last handle (then forgotten). */
  close(fh: number): { handle: FileHandle; last: OpenInode | null } {
    const handle = this.handle(fh);
    this.handles.delete(fh);
    const state = this.inodes.get(handle.ino)!;
    state.handles--;
    if (state.handles > 0) return { handle, last: null };
    this.inodes.delete(handle.ino);
    return { handle, last: state };
  }

  inode(ino: number): OpenInode | undefined {
    return this.inodes.get(ino);
  }

  isOpen(ino: number): boolean {
    return this.inodes.has(ino);
  }

  openHandles(): number {
    return this.handles.size;
  }

  openInodes(): OpenInode[] {
    return [...this.inodes.values()];
  }
}
