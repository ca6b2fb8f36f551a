// The request loop: INIT negotiation, dispatch by opcode to a FuseFilesystem, replies,
// INTERRUPT, lookup counting for FORGET/BATCH_FORGET, and notifications.
//
// Every request is parsed synchronously the moment it arrives (names decoded, SETXATTR values
// copied), so its read buffer goes straight back to the readers; only WRITE keeps its buffer,
// because its data is handed to the filesystem as a view, until the write settles. Requests
// in flight are bounded by maxInFlight: past it, buffers are not given back and the readers
// stop taking requests from the kernel.
import { constants as osConstants } from 'node:os';
import * as abi from './abi.js';
import { Opcode } from './abi.js';
import {
  allocReply,
  packDirent,
  readCString,
  readS64,
  readU64,
  timespecToMs,
  writeAttrOut,
  writeEntryOut,
  writeOutHeader,
  writeStatfs,
  writeU64,
} from './codec.js';
import { WriteResult, type FuseDevice } from './device.js';
import { ReplyPool } from './reply-pool.js';
import type {
  ConnInfo,
  EntryOut,
  FuseFilesystem,
  FuseLogger,
  FuseMountOptions,
  FuseNotifier,
  FuseSessionStats,
  NegativeEntryOut,
  OpenOut,
  RequestContext,
  SetAttrIn,
} from './types.js';

const MIB = 1024 * 1024;
/** Timestamps travel as milliseconds in doubles: microseconds are what they hold exactly (codec.msToTimespec). */
const TIME_GRAN_NS = 1000;

/** The request context handed to the filesystem. The AbortController is made only if asked for. */
class Context implements RequestContext {
  private ac: AbortController | undefined;
  private listeners: Array<() => void> | undefined;
  interrupted = false;
  constructor(
    readonly unique: bigint,
    readonly uid: number,
    readonly gid: number,
    readonly pid: number,
    readonly opcode: number,
  ) {}
  get signal(): AbortSignal {
    if (!this.ac) {
      this.ac = new AbortController();
      if (this.interrupted) this.ac.abort(interruptError());
    }
    return this.ac.signal;
  }
  onInterrupt(fn: () => void): () => void {
    if (this.interrupted) {
      fn();
      return () => {};
    }
    (this.listeners ??= []).push(fn);
    return () => {
      const i = this.listeners?.indexOf(fn) ?? -1;
      if (i >= 0) this.listeners!.splice(i, 1);
    };
  }
  interrupt(): void {
    if (this.interrupted) return;
    this.interrupted = true;
    this.ac?.abort(interruptError());
    const ls = this.listeners;
    this.listeners = undefined;
    if (ls) for (const fn of ls) fn();
  }
}

function interruptError(): Error {
  return Object.assign(new Error('interrupted by the caller (FUSE_INTERRUPT)'), { errno: abi.EINTR, code: 'EINTR' });
}

/** The errno a thrown value answers with: its positive errno, its code, else EIO. */
export function errnoOf(err: unknown): number {
  const e = err as { errno?: unknown; code?: unknown } | null;
  if (e && typeof e.errno === 'number' && e.errno !== 0 && Number.isFinite(e.errno)) return Math.abs(e.errno);
  if (e && typeof e.code === 'string') {
    const n = (osConstants.errno as Record<string, number>)[e.code];
    if (n) return n;
  }
  return abi.EIO;
}

/** A reply: the bytes to write, and the inodes it hands the kernel a reference to (one each). */
interface Reply {
  data: Buffer;
  entries?: number[];
  /** The ReplyPool buffer `data` is a view of: back to the pool once written. */
  pooled?: Buffer;
}

class ProtocolError extends Error {}

function assert(cond: unknown, what: string): asserts cond {
  if (!cond) throw new ProtocolError(`fuse invariant broken: ${what}`);
}

export class FuseServer implements FuseNotifier {
  conn: ConnInfo | undefined;
  /** Requests read and not yet answered, by unique. */
  private readonly inflight = new Map<bigint, Context>();
  /** Kernel references per inode (lookup counts); the root starts with the mount's own. */
  private readonly lookups = new Map<number, number>([[abi.FUSE_ROOT_ID, 1]]);
  /** Buffers not given back because maxInFlight was reached. */
  private readonly deferredSlots: number[] = [];
  private readonly maxInFlightBound: number;
  private readonly replies = new ReplyPool(32 * MIB, 64);
  private initResolve!: (c: ConnInfo) => void;
  private initReject!: (e: Error) => void;
  readonly initialized: Promise<ConnInfo>;
  private destroyed = false;
  private closed = false;
  readonly stats: FuseSessionStats = {
    inFlight: 0,
    maxInFlight: 0,
    knownInodes: 1,
    requests: 0,
    interrupts: 0,
    forgets: 0,
    errors: 0,
    notifications: 0,
    ops: {},
  };
  private readonly debug: boolean;

  constructor(
    private readonly device: FuseDevice,
    private readonly fs: FuseFilesystem,
    private readonly opts: FuseMountOptions,
    private readonly log: FuseLogger,
  ) {
    this.maxInFlightBound = opts.maxInFlight ?? 256;
    this.debug = !!opts.debug;
    this.initialized = new Promise((resolve, reject) => {
      this.initResolve = resolve;
      this.initReject = reject;
    });
    this.initialized.catch(() => {});
  }

  // ---- arrival -------------------------------------------------------------------------

  /** A request arrived in slot (length bytes). Runs on the main thread. */
  readonly onRequest = (slot: number, length: number): void => {
    const buf = this.device.view(slot);
    if (length < abi.IN_HEADER_SIZE || buf.readUInt32LE(0) !== length) {
      this.log.error({ length }, 'fuse: malformed request (length mismatch); dropped');
      this.stats.errors++;
      this.device.release(slot);
      return;
    }
    const opcode = buf.readUInt32LE(4);
    const unique = buf.readBigUInt64LE(8);
    const nodeid = readU64(buf, 16);
    this.stats.requests++;
    const opName = abi.OPCODE_NAMES[opcode] ?? String(opcode);
    this.stats.ops[opName] = (this.stats.ops[opName] ?? 0) + 1;

    // Requests without a reply first.
    if (opcode === Opcode.FORGET || opcode === Opcode.BATCH_FORGET || opcode === Opcode.INTERRUPT) {
      try {
        if (opcode === Opcode.FORGET) this.forget(nodeid, readU64(buf, 40));
        else if (opcode === Opcode.BATCH_FORGET) {
          const count = buf.readUInt32LE(40);
          assert(48 + count * 16 <= length, 'BATCH_FORGET count beyond the request');
          for (let i = 0, off = 48; i < count; i++, off += 16) this.forget(readU64(buf, off), readU64(buf, off + 8));
        } else this.interruptRequest(unique, buf.readBigUInt64LE(40));
      } catch (err) {
        this.stats.errors++;
        this.log.error({ err, op: abi.OPCODE_NAMES[opcode] }, 'fuse: request without reply failed');
      }
      this.device.release(slot);
      return;
    }

    const ctx = new Context(unique, buf.readUInt32LE(24), buf.readUInt32LE(28), buf.readUInt32LE(32), opcode);
    this.inflight.set(unique, ctx);
    this.stats.inFlight = this.inflight.size;
    if (this.inflight.size > this.stats.maxInFlight) this.stats.maxInFlight = this.inflight.size;
    assert(this.inflight.size <= this.maxInFlightBound + this.device.slotCount, 'requests in flight beyond their bound');
    if (this.debug) this.log.debug({ op: abi.OPCODE_NAMES[opcode] ?? opcode, unique: String(unique), nodeid, uid: ctx.uid, pid: ctx.pid }, 'fuse request');

    let pending: Promise<Reply | null>;
    try {
      pending = this.dispatch(opcode, ctx, nodeid, buf, length);
    } catch (err) {
      pending = Promise.reject(err);
    }
    // The synchronous part of dispatch has parsed everything it needs: only WRITE still
    // reads the buffer (its data), until the filesystem is done with it.
    const keepSlot = opcode === Opcode.WRITE;
    if (!keepSlot) this.giveBack(slot);
    pending.then(
      (reply) => this.finish(ctx, reply, 0, keepSlot ? slot : -1),
      (err: unknown) => this.finish(ctx, null, this.errorFor(ctx, err), keepSlot ? slot : -1),
    );
  };

  private giveBack(slot: number): void {
    if (this.inflight.size > this.maxInFlightBound) this.deferredSlots.push(slot);
    else this.device.release(slot);
  }

  private errorFor(ctx: Context, err: unknown): number {
    if (err instanceof ProtocolError) {
      this.stats.errors++;
      this.log.error({ err: err.message, op: abi.OPCODE_NAMES[ctx.opcode] }, 'fuse: bad request');
      return abi.EIO;
    }
    if (ctx.interrupted) return abi.EINTR;
    const errno = errnoOf(err);
    if (errno === abi.EIO && !(typeof (err as { errno?: unknown })?.errno === 'number')) {
      // Not an errno-carrying error: a bug or an unexpected failure below us; say so.
      this.log.warn({ err, op: abi.OPCODE_NAMES[ctx.opcode] }, 'fuse: filesystem threw without an errno; answering EIO');
    }
    return errno;
  }

  /** Writes the reply (or the error) and retires the request. */
  private finish(ctx: Context, reply: Reply | null, errno: number, slot: number): void {
    this.inflight.delete(ctx.unique);
    this.stats.inFlight = this.inflight.size;
    if (slot >= 0) this.giveBack(slot);
    while (this.deferredSlots.length > 0 && this.inflight.size <= this.maxInFlightBound) this.device.release(this.deferredSlots.pop()!);
    if (this.closed) return;
    let data: Buffer;
    if (errno !== 0) {
      data = Buffer.allocUnsafe(abi.OUT_HEADER_SIZE);
      writeOutHeader(data, abi.OUT_HEADER_SIZE, -errno, ctx.unique);
    } else if (reply) {
      data = reply.data;
    } else {
      data = allocReply(ctx.unique, 0);
    }
    if (this.debug) this.log.debug({ op: abi.OPCODE_NAMES[ctx.opcode], unique: String(ctx.unique), error: errno, len: data.length }, 'fuse reply');
    let r: WriteResult;
    try {
      r = this.device.writeReply(data);
    } catch (err) {
      // EINVAL and the like: the kernel refused the reply's shape; a bug in this server.
      this.stats.errors++;
      this.log.error({ err, op: abi.OPCODE_NAMES[ctx.opcode], len: data.length }, 'fuse: the kernel refused a reply');
      return;
    }
    if (reply?.pooled) this.replies.give(reply.pooled); // written (or refused): the kernel holds no view of it
    // Count references only for replies the kernel took: it cannot forget what it never got.
    if (r === WriteResult.OK && errno === 0 && reply?.entries) for (const ino of reply.entries) this.countLookup(ino);
    if (ctx.opcode === Opcode.INIT) {
      if (r === WriteResult.OK && errno === 0 && this.conn) this.initResolve(this.conn);
      else if (errno !== 0 || r !== WriteResult.OK) this.initReject(new Error(`fuse: INIT failed (errno ${errno}, write result ${r})`));
    }
  }

  // ---- lookup counting -----------------------------------------------------------------

  private countLookup(ino: number): void {
    if (ino === 0) return;
    this.lookups.set(ino, (this.lookups.get(ino) ?? 0) + 1);
    this.stats.knownInodes = this.lookups.size;
  }

  private forget(ino: number, n: number): void {
    this.stats.forgets++;
    const have = this.lookups.get(ino);
    assert(have !== undefined && have >= n, `FORGET of ${n} references to inode ${ino}, which has ${have ?? 0}`);
    const left = have - n;
    if (left > 0 || ino === abi.FUSE_ROOT_ID) {
      this.lookups.set(ino, left);
      return;
    }
    this.lookups.delete(ino);
    this.stats.knownInodes = this.lookups.size;
    try {
      this.fs.forget?.(ino);
    } catch (err) {
      this.log.warn({ err, ino }, 'fuse: forget threw');
    }
  }

  /** Kernel references to ino right now (for tests). */
  lookupCount(ino: number): number {
    return this.lookups.get(ino) ?? 0;
  }

  // ---- interrupts ----------------------------------------------------------------------

  private interruptRequest(ownUnique: bigint, target: bigint): void {
    this.stats.interrupts++;
    const ctx = this.inflight.get(target);
    if (ctx) {
      if (this.debug) this.log.debug({ unique: String(target) }, 'fuse interrupt');
      ctx.interrupt();
      return;
    }
    // Not seen yet (another reader has it queued) or already answered: EAGAIN makes the
    // kernel queue the interrupt again if the request is still waiting, and is ignored if not.
    const data = Buffer.allocUnsafe(abi.OUT_HEADER_SIZE);
    writeOutHeader(data, abi.OUT_HEADER_SIZE, -abi.EAGAIN, ownUnique);
    this.device.writeReply(data);
  }

  // ---- the connection ends ---------------------------------------------------------------

  /** Called once when the device reports the connection gone. */
  async onClosed(): Promise<void> {
    this.closed = true;
    for (const ctx of this.inflight.values()) ctx.interrupt();
    this.initReject(new Error('fuse: the connection closed before INIT'));
    await this.destroyOnce();
  }

  private async destroyOnce(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    if (!this.conn) return;
    try {
      await this.fs.destroy?.();
    } catch (err) {
      this.log.warn({ err }, 'fuse: destroy threw');
    }
  }

  // ---- notifications -------------------------------------------------------------------

  async invalInode(ino: number, offset = 0, length = 0): Promise<void> {
    if (!this.conn || this.closed) return;
    const buf = Buffer.alloc(abi.OUT_HEADER_SIZE + abi.NOTIFY_INVAL_INODE_SIZE);
    writeOutHeader(buf, buf.length, abi.NotifyCode.INVAL_INODE, 0n);
    writeU64(buf, 16, ino);
    writeU64(buf, 24, offset);
    writeU64(buf, 32, length);
    this.stats.notifications++;
    await this.device.writeNotify(buf);
  }

  async invalEntry(parent: number, name: string): Promise<void> {
    if (!this.conn || this.closed) return;
    const nameLen = Buffer.byteLength(name);
    const buf = Buffer.alloc(abi.OUT_HEADER_SIZE + abi.NOTIFY_INVAL_ENTRY_SIZE + nameLen + 1);
    writeOutHeader(buf, buf.length, abi.NotifyCode.INVAL_ENTRY, 0n);
    writeU64(buf, 16, parent);
    buf.writeUInt32LE(nameLen, 24);
    buf.writeUInt32LE(0, 28);
    buf.write(name, 32, nameLen, 'utf8');
    this.stats.notifications++;
    await this.device.writeNotify(buf);
  }

  // ---- dispatch ------------------------------------------------------------------------

  /**
   * Everything read from buf happens before the first await (the buffer goes back to the
   * readers right after this returns), except WRITE's data.
   */
  private async dispatch(op: number, ctx: Context, ino: number, buf: Buffer, len: number): Promise<Reply | null> {
    const fs = this.fs;
    if (op === Opcode.INIT) return this.init(ctx, buf, len);
    if (!this.conn) throw Object.assign(new Error('request before INIT'), { errno: abi.EIO });
    const u = ctx.unique;
    switch (op) {
      case Opcode.LOOKUP: {
        const [name] = readCString(buf, 40, len);
        if (!fs.lookup) throw enosys();
        return entryReply(u, await fs.lookup(ctx, ino, name));
      }
      case Opcode.GETATTR: {
        const flags = buf.readUInt32LE(40);
        const fh = flags & abi.FUSE_GETATTR_FH ? readU64(buf, 48) : undefined;
        if (!fs.getattr) throw enosys();
        const a = await fs.getattr(ctx, ino, fh);
        const data = allocReply(u, abi.ATTR_OUT_SIZE);
        writeAttrOut(data, 16, a.attr, a.attrTimeoutMs);
        return { data };
      }
      case Opcode.SETATTR: {
        const changes = parseSetattr(buf);
        if (!fs.setattr) throw enosys();
        const a = await fs.setattr(ctx, ino, changes);
        const data = allocReply(u, abi.ATTR_OUT_SIZE);
        writeAttrOut(data, 16, a.attr, a.attrTimeoutMs);
        return { data };
      }
      case Opcode.READLINK: {
        if (!fs.readlink) throw enosys();
        const target = Buffer.from(await fs.readlink(ctx, ino), 'utf8');
        const data = allocReply(u, target.length);
        target.copy(data, 16);
        return { data };
      }
      case Opcode.SYMLINK: {
        const [name, next] = readCString(buf, 40, len);
        const [target] = readCString(buf, next, len);
        if (!fs.symlink) throw enosys();
        return entryReply(u, await fs.symlink(ctx, ino, name, target));
      }
      case Opcode.MKNOD: {
        const mode = buf.readUInt32LE(40);
        const rdev = buf.readUInt32LE(44);
        const umask = buf.readUInt32LE(48);
        const [name] = readCString(buf, 56, len);
        if (!fs.mknod) throw enosys();
        return entryReply(u, await fs.mknod(ctx, ino, name, mode, rdev, umask));
      }
      case Opcode.MKDIR: {
        const mode = buf.readUInt32LE(40);
        const umask = buf.readUInt32LE(44);
        const [name] = readCString(buf, 48, len);
        if (!fs.mkdir) throw enosys();
        return entryReply(u, await fs.mkdir(ctx, ino, name, mode | 0o040000, umask));
      }
      case Opcode.UNLINK: {
        const [name] = readCString(buf, 40, len);
        if (!fs.unlink) throw enosys();
        await fs.unlink(ctx, ino, name);
        return null;
      }
      case Opcode.RMDIR: {
        const [name] = readCString(buf, 40, len);
        if (!fs.rmdir) throw enosys();
        await fs.rmdir(ctx, ino, name);
        return null;
      }
      case Opcode.RENAME:
      case Opcode.RENAME2: {
        const newDir = readU64(buf, 40);
        const flags = op === Opcode.RENAME2 ? buf.readUInt32LE(48) : 0;
        const [name, next] = readCString(buf, op === Opcode.RENAME2 ? 56 : 48, len);
        const [newName] = readCString(buf, next, len);
        if (!fs.rename) throw enosys();
        await fs.rename(ctx, ino, name, newDir, newName, flags);
        return null;
      }
      case Opcode.LINK: {
        const oldIno = readU64(buf, 40);
        const [newName] = readCString(buf, 48, len);
        if (!fs.link) throw enosys();
        return entryReply(u, await fs.link(ctx, oldIno, ino, newName));
      }
      case Opcode.OPEN:
      case Opcode.OPENDIR: {
        const flags = buf.readUInt32LE(40);
        const method = op === Opcode.OPEN ? fs.open : fs.opendir;
        if (!method) throw enosys();
        const o = await method.call(fs, ctx, ino, flags);
        const data = allocReply(u, abi.OPEN_OUT_SIZE);
        writeOpenOut(data, 16, o);
        return { data };
      }
      case Opcode.CREATE: {
        const flags = buf.readUInt32LE(40);
        const mode = buf.readUInt32LE(44);
        const umask = buf.readUInt32LE(48);
        const [name] = readCString(buf, 56, len);
        if (!fs.create) throw enosys();
        const c = await fs.create(ctx, ino, name, mode, flags, umask);
        const data = allocReply(u, abi.ENTRY_OUT_SIZE + abi.OPEN_OUT_SIZE);
        writeEntryOut(data, 16, c.entry);
        writeOpenOut(data, 16 + abi.ENTRY_OUT_SIZE, c.open);
        return { data, entries: [c.entry.attr.ino] };
      }
      case Opcode.READ: {
        const fh = readU64(buf, 40);
        const offset = readU64(buf, 48);
        const size = buf.readUInt32LE(56);
        assert(size <= this.maxReplyBody(), `READ of ${size} bytes beyond max_pages`);
        if (!fs.read) throw enosys();
        // One buffer for header and data: the filesystem reads straight into the reply. On an
        // error the buffer is dropped, not pooled: an interrupted read may still fill it.
        const data = this.replies.take(abi.OUT_HEADER_SIZE + size);
        const n = await fs.read(ctx, ino, fh, offset, data.subarray(16, 16 + size));
        assert(Number.isInteger(n) && n >= 0 && n <= size, `read returned ${n} for a ${size}-byte request`);
        writeOutHeader(data, abi.OUT_HEADER_SIZE + n, 0, u);
        return { data: n === size ? data : data.subarray(0, 16 + n), pooled: data };
      }
      case Opcode.WRITE: {
        const fh = readU64(buf, 40);
        const offset = readU64(buf, 48);
        const size = buf.readUInt32LE(56);
        const flags = buf.readUInt32LE(72);
        assert(80 + size <= len, 'WRITE data beyond the request');
        if (!fs.write) throw enosys();
        const n = await fs.write(ctx, ino, fh, offset, buf.subarray(80, 80 + size), flags);
        assert(Number.isInteger(n) && n >= 0 && n <= size, `write returned ${n} for a ${size}-byte request`);
        const data = allocReply(u, abi.WRITE_OUT_SIZE);
        data.writeUInt32LE(n, 16);
        data.writeUInt32LE(0, 20);
        return { data };
      }
      case Opcode.STATFS: {
        if (!fs.statfs) throw enosys();
        const s = await fs.statfs(ctx, ino);
        const data = allocReply(u, abi.STATFS_OUT_SIZE);
        writeStatfs(data, 16, s);
        return { data };
      }
      case Opcode.RELEASE:
      case Opcode.RELEASEDIR: {
        const fh = readU64(buf, 40);
        const flags = buf.readUInt32LE(48);
        // The kernel does not wait for or act on a release error: nothing to answer but 0.
        if (op === Opcode.RELEASE) await fs.release?.(ctx, ino, fh, flags);
        else await fs.releasedir?.(ctx, ino, fh);
        return null;
      }
      case Opcode.FSYNC:
      case Opcode.FSYNCDIR: {
        const fh = readU64(buf, 40);
        const datasync = (buf.readUInt32LE(48) & abi.FUSE_FSYNC_FDATASYNC) !== 0;
        const method = op === Opcode.FSYNC ? fs.fsync : fs.fsyncdir;
        if (!method) throw enosys();
        await method.call(fs, ctx, ino, fh, datasync);
        return null;
      }
      case Opcode.FLUSH: {
        const fh = readU64(buf, 40);
        if (!fs.flush) throw enosys();
        await fs.flush(ctx, ino, fh);
        return null;
      }
      case Opcode.SETXATTR: {
        const size = buf.readUInt32LE(40);
        const flags = buf.readUInt32LE(44);
        const [name, next] = readCString(buf, 48, len);
        assert(next + size <= len, 'SETXATTR value beyond the request');
        const value = Buffer.from(buf.subarray(next, next + size)); // a copy: the buffer goes back now
        if (!fs.setxattr) throw enosys();
        await fs.setxattr(ctx, ino, name, value, flags);
        return null;
      }
      case Opcode.GETXATTR: {
        const size = buf.readUInt32LE(40);
        const [name] = readCString(buf, 48, len);
        if (!fs.getxattr) throw enosys();
        return sizedReply(u, size, await fs.getxattr(ctx, ino, name));
      }
      case Opcode.LISTXATTR: {
        const size = buf.readUInt32LE(40);
        if (!fs.listxattr) throw enosys();
        const names = await fs.listxattr(ctx, ino);
        const value = Buffer.from(names.map((n) => n + '\0').join(''), 'utf8');
        return sizedReply(u, size, value);
      }
      case Opcode.REMOVEXATTR: {
        const [name] = readCString(buf, 40, len);
        if (!fs.removexattr) throw enosys();
        await fs.removexattr(ctx, ino, name);
        return null;
      }
      case Opcode.READDIR:
      case Opcode.READDIRPLUS: {
        const fh = readU64(buf, 40);
        const offset = readU64(buf, 48);
        const size = buf.readUInt32LE(56);
        assert(size <= this.maxReplyBody(), `READDIR of ${size} bytes beyond max_pages`);
        const plus = op === Opcode.READDIRPLUS;
        if (!fs.readdir) throw enosys();
        const list = await fs.readdir(ctx, ino, fh, offset, plus);
        const data = allocReply(u, size);
        const limit = 16 + size;
        let off = 16;
        const entries: number[] = [];
        for (const e of list) {
          const next = packDirent(data, off, limit, e, plus);
          if (next < 0) break;
          off = next;
          // The kernel takes a reference for every entry with attributes, except . and ..
          if (plus && e.entry && e.entry.attr.ino !== 0 && e.name !== '.' && e.name !== '..') entries.push(e.entry.attr.ino);
        }
        data.writeUInt32LE(off, 0);
        return { data: data.subarray(0, off), entries };
      }
      case Opcode.ACCESS: {
        const mask = buf.readUInt32LE(40);
        if (!fs.access) throw enosys();
        await fs.access(ctx, ino, mask);
        return null;
      }
      case Opcode.FALLOCATE: {
        const fh = readU64(buf, 40);
        const offset = readU64(buf, 48);
        const length = readU64(buf, 56);
        const mode = buf.readUInt32LE(64);
        if (!fs.fallocate) throw enosys();
        await fs.fallocate(ctx, ino, fh, offset, length, mode);
        return null;
      }
      case Opcode.LSEEK: {
        const fh = readU64(buf, 40);
        const offset = readS64(buf, 48);
        const whence = buf.readUInt32LE(56);
        if (!fs.lseek) throw enosys();
        const pos = await fs.lseek(ctx, ino, fh, offset, whence);
        const data = allocReply(u, abi.LSEEK_OUT_SIZE);
        writeU64(data, 16, pos);
        return { data };
      }
      case Opcode.COPY_FILE_RANGE:
      case Opcode.COPY_FILE_RANGE_64: {
        const fhIn = readU64(buf, 40);
        const offIn = readU64(buf, 48);
        const inoOut = readU64(buf, 56);
        const fhOut = readU64(buf, 64);
        const offOut = readU64(buf, 72);
        let length = readU64(buf, 80);
        const flags = readU64(buf, 88);
        if (!fs.copyFileRange) throw enosys();
        // The old opcode answers in 32 bits; never claim more than it can carry.
        if (op === Opcode.COPY_FILE_RANGE) length = Math.min(length, 0xfffff000);
        const n = await fs.copyFileRange(ctx, ino, fhIn, offIn, inoOut, fhOut, offOut, length, flags);
        assert(Number.isInteger(n) && n >= 0 && n <= length, `copyFileRange returned ${n} for ${length} bytes`);
        const data = allocReply(u, 8);
        if (op === Opcode.COPY_FILE_RANGE) {
          data.writeUInt32LE(n, 16);
          data.writeUInt32LE(0, 20);
        } else writeU64(data, 16, n);
        return { data };
      }
      case Opcode.DESTROY:
        await this.destroyOnce();
        return null;
      default:
        // GETLK/SETLK (locks stay local: we do not ask for POSIX_LOCKS), IOCTL, POLL, BMAP,
        // SYNCFS, TMPFILE, STATX... and anything newer than this server.
        throw enosys();
    }
  }

  /** The largest reply body the kernel may ask for: max_pages pages (READ, READDIR). */
  private maxReplyBody(): number {
    return Math.max(this.conn!.maxPages * abi.PAGE_SIZE, this.conn!.maxWrite);
  }

  // ---- INIT ----------------------------------------------------------------------------

  private async init(ctx: Context, buf: Buffer, _len: number): Promise<Reply> {
    const major = buf.readUInt32LE(40);
    const minor = buf.readUInt32LE(44);
    const kernelReadahead = buf.readUInt32LE(48);
    let kflags = BigInt(buf.readUInt32LE(52));
    if (kflags & abi.FUSE_INIT_EXT) kflags |= BigInt(buf.readUInt32LE(56)) << 32n;
    if (major > abi.FUSE_KERNEL_VERSION) {
      // Answer with our major only; the kernel sends INIT again in our major.
      const data = allocReply(ctx.unique, 8);
      data.writeUInt32LE(abi.FUSE_KERNEL_VERSION, 16);
      data.writeUInt32LE(abi.FUSE_KERNEL_MINOR_VERSION, 20);
      return { data };
    }
    if (major < abi.FUSE_KERNEL_VERSION || minor < abi.FUSE_MIN_MINOR_VERSION) {
      const err = new Error(`fuse: kernel protocol ${major}.${minor} is older than the 7.${abi.FUSE_MIN_MINOR_VERSION} this server needs`);
      this.initReject(err);
      throw Object.assign(err, { errno: abi.EPROTO });
    }
    const opts = this.opts;
    const maxWrite = opts.maxWrite ?? MIB;
    const maxPages = Math.min(abi.FUSE_MAX_MAX_PAGES, Math.ceil(maxWrite / abi.PAGE_SIZE));
    let want =
      abi.FUSE_ASYNC_READ |
      abi.FUSE_ATOMIC_O_TRUNC |
      abi.FUSE_EXPORT_SUPPORT |
      abi.FUSE_BIG_WRITES |
      abi.FUSE_PARALLEL_DIROPS |
      abi.FUSE_MAX_PAGES |
      abi.FUSE_CACHE_SYMLINKS;
    const plus = opts.readdirplus ?? 'auto';
    if (plus !== 'off') want |= abi.FUSE_DO_READDIRPLUS;
    if (plus === 'auto') want |= abi.FUSE_READDIRPLUS_AUTO;
    if (opts.writebackCache) want |= abi.FUSE_WRITEBACK_CACHE;
    if (opts.asyncDio ?? true) want |= abi.FUSE_ASYNC_DIO;
    if (kflags & abi.FUSE_INIT_EXT) want |= abi.FUSE_INIT_EXT;
    const flags = want & kflags;
    const maxBackground = Math.min(opts.maxBackground ?? 64, 0xffff);
    const conn: ConnInfo = {
      major: abi.FUSE_KERNEL_VERSION,
      minor: Math.min(minor, abi.FUSE_KERNEL_MINOR_VERSION),
      maxWrite,
      maxReadahead: Math.min(opts.maxReadahead ?? MIB, kernelReadahead),
      maxPages: flags & abi.FUSE_MAX_PAGES ? maxPages : 32,
      flags,
      writebackCache: (flags & abi.FUSE_WRITEBACK_CACHE) !== 0n,
    };
    try {
      await this.fs.init?.(conn);
    } catch (err) {
      this.initReject(err as Error);
      throw err;
    }
    const data = allocReply(ctx.unique, abi.INIT_OUT_SIZE);
    data.fill(0, 16);
    data.writeUInt32LE(conn.major, 16);
    data.writeUInt32LE(conn.minor, 20);
    data.writeUInt32LE(conn.maxReadahead, 24);
    data.writeUInt32LE(Number(flags & 0xffffffffn), 28);
    data.writeUInt16LE(maxBackground, 32);
    data.writeUInt16LE(Math.max(1, Math.floor((maxBackground * 3) / 4)), 34);
    data.writeUInt32LE(maxWrite, 36);
    data.writeUInt32LE(TIME_GRAN_NS, 40); // time_gran
    data.writeUInt16LE(conn.maxPages, 44);
    data.writeUInt32LE(Number(flags >> 32n), 48); // flags2
    this.conn = conn;
    this.log.info(
      { major: conn.major, minor: conn.minor, maxWrite, maxPages: conn.maxPages, maxReadahead: conn.maxReadahead, flags: '0x' + flags.toString(16) },
      'fuse: INIT negotiated',
    );
    return { data }; // initialized resolves once finish() has written this
  }
}

function enosys(): Error {
  return Object.assign(new Error('not implemented by the filesystem'), { errno: abi.ENOSYS });
}

function entryReply(unique: bigint, e: EntryOut | NegativeEntryOut): Reply {
  const data = allocReply(unique, abi.ENTRY_OUT_SIZE);
  if (!('attr' in e)) {
    writeEntryOut(data, 16, null, e.entryTimeoutMs);
    return { data };
  }
  writeEntryOut(data, 16, e);
  return { data, entries: [e.attr.ino] };
}

function writeOpenOut(buf: Buffer, off: number, o: OpenOut): void {
  let flags = 0;
  if (o.directIo) flags |= abi.FOPEN_DIRECT_IO;
  if (o.keepCache) flags |= abi.FOPEN_KEEP_CACHE;
  if (o.nonSeekable) flags |= abi.FOPEN_NONSEEKABLE;
  if (o.cacheDir) flags |= abi.FOPEN_CACHE_DIR;
  writeU64(buf, off, o.fh);
  buf.writeUInt32LE(flags, off + 8);
  buf.writeInt32LE(0, off + 12); // backing_id
}

/** GETXATTR/LISTXATTR: size 0 asks for the length; a value longer than size is ERANGE. */
function sizedReply(unique: bigint, size: number, value: Buffer): Reply {
  if (size === 0) {
    const data = allocReply(unique, abi.GETXATTR_OUT_SIZE);
    data.writeUInt32LE(value.length, 16);
    data.writeUInt32LE(0, 20);
    return { data };
  }
  if (value.length > size) throw Object.assign(new Error('xattr value larger than the buffer'), { errno: abi.ERANGE });
  const data = allocReply(unique, value.length);
  value.copy(data, 16);
  return { data };
}

function parseSetattr(buf: Buffer): SetAttrIn {
  const valid = buf.readUInt32LE(40);
  const c: SetAttrIn = {};
  if (valid & abi.FATTR_MODE) c.mode = buf.readUInt32LE(108);
  if (valid & abi.FATTR_UID) c.uid = buf.readUInt32LE(116);
  if (valid & abi.FATTR_GID) c.gid = buf.readUInt32LE(120);
  if (valid & abi.FATTR_SIZE) c.size = readU64(buf, 56);
  if (valid & abi.FATTR_ATIME_NOW) c.atimeMs = 'now';
  else if (valid & abi.FATTR_ATIME) c.atimeMs = timespecToMs(readS64(buf, 72), buf.readUInt32LE(96));
  if (valid & abi.FATTR_MTIME_NOW) c.mtimeMs = 'now';
  else if (valid & abi.FATTR_MTIME) c.mtimeMs = timespecToMs(readS64(buf, 80), buf.readUInt32LE(100));
  if (valid & abi.FATTR_CTIME) c.ctimeMs = timespecToMs(readS64(buf, 88), buf.readUInt32LE(104));
  if (valid & abi.FATTR_FH) c.fh = readU64(buf, 48);
  return c;
}
