// The parts of fuse-native 2.2.6 the adapter uses (the package ships no types).
// `extraOptions`, the `caller` argument and the utimens NOW/OMIT values exist only after
// scripts/patch-fuse.mjs ran.
declare module 'fuse-native' {
  type Cb = (code: number) => void;
  /** The calling process (patched addon only; undefined on the stock prebuilt addon). */
  export interface FuseCaller { uid: number; gid: number }
  export interface FuseStat {
    mode: number; uid: number; gid: number; size: number; dev?: number; nlink: number; ino: number; rdev: number;
    blksize: number; blocks: number; atime: number; mtime: number; ctime: number;
  }
  export interface FuseStatfs {
    bsize: number; frsize: number; blocks: number; bfree: number; bavail: number; files: number; ffree: number; favail: number;
    fsid?: number; flag?: number; namemax: number;
  }
  export interface FuseOps {
    init?(cb: Cb): void;
    access?(path: string, mode: number, cb: Cb): void;
    statfs?(path: string, cb: (code: number, statfs?: FuseStatfs) => void): void;
    getattr?(path: string, cb: (code: number, stat?: FuseStat) => void): void;
    fgetattr?(path: string, fd: number, cb: (code: number, stat?: FuseStat) => void): void;
    flush?(path: string, fd: number, cb: Cb): void;
    fsync?(path: string, datasync: boolean, fd: number, cb: Cb): void;
    fsyncdir?(path: string, datasync: boolean, fd: number, cb: Cb): void;
    readdir?(path: string, cb: (code: number, names?: string[], stats?: Array<Partial<FuseStat>>) => void): void;
    truncate?(path: string, size: number, cb: Cb): void;
    ftruncate?(path: string, fd: number, size: number, cb: Cb): void;
    utimens?(path: string, atime: number, mtime: number, cb: Cb): void;
    readlink?(path: string, cb: (code: number, target?: string) => void): void;
    chown?(path: string, uid: number, gid: number, cb: Cb): void;
    chmod?(path: string, mode: number, cb: Cb): void;
    mknod?(path: string, mode: number, dev: number, cb: Cb, caller?: FuseCaller): void;
    setxattr?(path: string, name: string, value: Buffer, position: number, flags: number, cb: Cb): void;
    getxattr?(path: string, name: string, position: number, cb: (code: number, value?: Buffer) => void): void;
    listxattr?(path: string, cb: (code: number, names?: string[]) => void): void;
    removexattr?(path: string, name: string, cb: Cb): void;
    open?(path: string, flags: number, cb: (code: number, fd?: number) => void): void;
    opendir?(path: string, flags: number, cb: (code: number, fd?: number) => void): void;
    read?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (bytesOrErr: number) => void): void;
    write?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (bytesOrErr: number) => void): void;
    release?(path: string, fd: number, cb: Cb): void;
    releasedir?(path: string, fd: number, cb: Cb): void;
    create?(path: string, mode: number, cb: (code: number, fd?: number) => void, caller?: FuseCaller): void;
    unlink?(path: string, cb: Cb): void;
    rename?(src: string, dest: string, cb: Cb): void;
    link?(src: string, dest: string, cb: Cb): void;
    symlink?(target: string, path: string, cb: Cb, caller?: FuseCaller): void;
    mkdir?(path: string, mode: number, cb: Cb, caller?: FuseCaller): void;
    rmdir?(path: string, cb: Cb): void;
  }
  export interface FuseOptions {
    force?: boolean;
    mkdir?: boolean;
    debug?: boolean;
    defaultPermissions?: boolean;
    attrTimeout?: number;
    entryTimeout?: number;
    fsname?: string;
    subtype?: string;
    timeout?: number | false | Record<string, number | false>;
    extraOptions?: string[];
  }
  export default class Fuse {
    constructor(mnt: string, ops: FuseOps, opts?: FuseOptions);
    mnt: string;
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    static unmount(mnt: string, cb: (err: Error | null) => void): void;
  }
}
