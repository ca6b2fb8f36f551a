// The operation vocabulary of the conformance suite and its interpreter. A case is a list
// of JSON-able ops; running it under a root directory gives one comparable result per op
// (errno name or value). The same list runs on a local directory and on the mount.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { PythonHelper } from './python-helper.js';

const C = fs.constants;

/** File contents in a case: text, a repeated byte, or pseudo-random bytes from a seed. */
export type DataSpec = { text: string } | { fill: number; len: number } | { seed: number; len: number };

export type Op =
  | { op: 'mkdir'; path: string; mode?: number }
  | { op: 'rmdir'; path: string }
  | { op: 'writeFile'; path: string; data: DataSpec; flags?: number; mode?: number }
  | { op: 'readFile'; path: string }
  | { op: 'open'; fd: number; path: string; flags: number; mode?: number }
  | { op: 'write'; fd: number; data: DataSpec; position?: number }
  | { op: 'read'; fd: number; length: number; position: number }
  | { op: 'close'; fd: number }
  | { op: 'fstat'; fd: number }
  | { op: 'fsync'; fd: number }
  | { op: 'ftruncate'; fd: number; size: number }
  | { op: 'truncate'; path: string; size: number }
  | { op: 'unlink'; path: string }
  | { op: 'rename'; from: string; to: string }
  | { op: 'link'; from: string; to: string }
  | { op: 'symlink'; target: string; path: string }
  | { op: 'readlink'; path: string }
  | { op: 'stat'; path: string }
  | { op: 'lstat'; path: string }
  | { op: 'readdir'; path: string }
  | { op: 'chmod'; path: string; mode: number }
  | { op: 'chown'; path: string; uid: number; gid: number }
  | { op: 'utimes'; path: string; atime: number; mtime: number }
  | { op: 'access'; path: string; mode: number }
  | { op: 'mkfifo'; path: string }
  | { op: 'setxattr'; path: string; name: string; value: string; flags?: number }
  | { op: 'getxattr'; path: string; name: string; size?: number }
  | { op: 'listxattr'; path: string; size?: number }
  | { op: 'removexattr'; path: string; name: string }
  | { op: 'mmapWrite'; path: string; offset: number; data: string }
  | { op: 'mmapRead'; path: string; offset: number; length: number }
  | { op: 'statfs'; path: string }
  | { op: 'markTimes'; path: string; label: string }
  | { op: 'checkTimes'; path: string; label: string }
  | { op: 'sleep'; ms: number }
  | { op: 'tree' };

export function bytesOf(spec: DataSpec): Buffer {
  if ('text' in spec) return Buffer.from(spec.text);
  if ('fill' in spec) return Buffer.alloc(spec.len, spec.fill);
  const out = Buffer.alloc(spec.len);
  let x = spec.seed >>> 0 || 1;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Short data as hex, long data as length + sha256, so results stay readable in diffs. */
export function digest(buf: Buffer): string {
  if (buf.length <= 64) return buf.toString('hex');
  return `${buf.length}:${createHash('sha256').update(buf).digest('hex').slice(0, 16)}`;
}

function typeOf(st: fs.Stats): string {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  return 'other';
}

/** The stat fields that must match; directory sizes and block counts differ by design. */
export function statView(st: fs.Stats): Record<string, unknown> {
  return {
    type: typeOf(st),
    perm: (st.mode & 0o7777).toString(8),
    size: st.isDirectory() ? 'dir' : st.size,
    nlink: st.nlink,
    uid: st.uid,
    gid: st.gid,
  };
}

export type OpResult = { err: string } | { ok: unknown };

export interface RunContext {
  root: string;
  fds: Map<number, number>;
  marks: Map<string, { atimeMs: number; mtimeMs: number; ctimeMs: number }>;
  py: PythonHelper;
  /** Ino of each path seen by stat, to check hard links share one inode. */
}

function p(ctx: RunContext, path: string): string {
  return join(ctx.root, path);
}

function fd(ctx: RunContext, slot: number): number {
  const n = ctx.fds.get(slot);
  if (n === undefined) throw Object.assign(new Error('slot not open'), { code: 'EBADSLOT' });
  return n;
}

function tree(dir: string, rel = ''): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of fs.readdirSync(join(dir, rel)).sort()) {
    const r = rel ? `${rel}/${name}` : name;
    const full = join(dir, r);
    const st = fs.lstatSync(full);
    const view: Record<string, unknown> = statView(st);
    if (st.isFile()) view.data = digest(fs.readFileSync(full));
    if (st.isSymbolicLink()) view.target = fs.readlinkSync(full);
    out[r] = view;
    if (st.isDirectory()) Object.assign(out, tree(dir, r));
  }
  return out;
}

async function pyCall(ctx: RunContext, req: Record<string, unknown>): Promise<OpResult> {
  const a = await ctx.py.call(req);
  return a.err !== undefined ? { err: a.err } : { ok: a.ok ?? null };
}

async function exec(ctx: RunContext, o: Op): Promise<unknown> {
  switch (o.op) {
    case 'mkdir': return fs.mkdirSync(p(ctx, o.path), { mode: o.mode ?? 0o755 }), null;
    case 'rmdir': return fs.rmdirSync(p(ctx, o.path)), null;
    case 'writeFile': {
      const n = fs.openSync(p(ctx, o.path), o.flags ?? C.O_WRONLY | C.O_CREAT | C.O_TRUNC, o.mode ?? 0o644);
      try {
        const data = bytesOf(o.data);
        for (let off = 0; off < data.length; ) off += fs.writeSync(n, data, off, data.length - off);
      } finally {
        fs.closeSync(n);
      }
      return null;
    }
    case 'readFile': return digest(fs.readFileSync(p(ctx, o.path)));
    case 'open': {
      const old = ctx.fds.get(o.fd);
      if (old !== undefined) fs.closeSync(old);
      ctx.fds.delete(o.fd);
      ctx.fds.set(o.fd, fs.openSync(p(ctx, o.path), o.flags, o.mode ?? 0o644));
      return null;
    }
    case 'write': {
      const data = bytesOf(o.data);
      return fs.writeSync(fd(ctx, o.fd), data, 0, data.length, o.position ?? null);
    }
    case 'read': {
      const buf = Buffer.alloc(o.length);
      const n = fs.readSync(fd(ctx, o.fd), buf, 0, o.length, o.position);
      return digest(buf.subarray(0, n));
    }
    case 'close': {
      const n = fd(ctx, o.fd);
      ctx.fds.delete(o.fd);
      return fs.closeSync(n), null;
    }
    case 'fstat': return statView(fs.fstatSync(fd(ctx, o.fd)));
    case 'fsync': return fs.fsyncSync(fd(ctx, o.fd)), null;
    case 'ftruncate': return fs.ftruncateSync(fd(ctx, o.fd), o.size), null;
    case 'truncate': return fs.truncateSync(p(ctx, o.path), o.size), null;
    case 'unlink': return fs.unlinkSync(p(ctx, o.path)), null;
    case 'rename': return fs.renameSync(p(ctx, o.from), p(ctx, o.to)), null;
    case 'link': {
      fs.linkSync(p(ctx, o.from), p(ctx, o.to));
      // Hard links must share the inode number (needs use_ino on the mount).
      return fs.statSync(p(ctx, o.from)).ino === fs.statSync(p(ctx, o.to)).ino;
    }
    case 'symlink': return fs.symlinkSync(o.target, p(ctx, o.path)), null;
    case 'readlink': return fs.readlinkSync(p(ctx, o.path));
    case 'stat': return statView(fs.statSync(p(ctx, o.path)));
    case 'lstat': return statView(fs.lstatSync(p(ctx, o.path)));
    case 'readdir': return fs.readdirSync(p(ctx, o.path)).sort();
    case 'chmod': return fs.chmodSync(p(ctx, o.path), o.mode), null;
    case 'chown': return fs.chownSync(p(ctx, o.path), o.uid, o.gid), null;
    case 'utimes': {
      fs.utimesSync(p(ctx, o.path), o.atime, o.mtime);
      const st = fs.statSync(p(ctx, o.path));
      return { atime: st.atimeMs, mtime: st.mtimeMs };
    }
    case 'access': return fs.accessSync(p(ctx, o.path), o.mode), null;
    case 'statfs': {
      const s = fs.statfsSync(p(ctx, o.path));
      return s.blocks > 0 && s.bsize > 0;
    }
    case 'markTimes': {
      const st = fs.lstatSync(p(ctx, o.path));
      ctx.marks.set(o.label, { atimeMs: st.atimeMs, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs });
      return null;
    }
    case 'checkTimes': {
      const st = fs.lstatSync(p(ctx, o.path));
      const m = ctx.marks.get(o.label)!;
      return { mtimeChanged: st.mtimeMs !== m.mtimeMs, ctimeChanged: st.ctimeMs !== m.ctimeMs, ctimeNotBeforeMtime: st.ctimeMs >= st.mtimeMs - 1 };
    }
    case 'sleep': return await new Promise((r) => setTimeout(r, o.ms)), null;
    case 'tree': return tree(ctx.root);
    case 'mkfifo': return unwrap(await pyCall(ctx, { op: 'mkfifo', path: p(ctx, o.path) }));
    case 'setxattr': case 'getxattr': case 'listxattr': case 'removexattr': case 'mmapWrite': case 'mmapRead': {
      const { op, ...rest } = o;
      const path = 'path' in rest ? p(ctx, rest.path) : '';
      return unwrap(await pyCall(ctx, { ...rest, op, path }));
    }
  }
}

class PyError extends Error {
  constructor(readonly code: string) {
    super(code);
  }
}

function unwrap(r: OpResult): unknown {
  if ('err' in r) throw new PyError(r.err);
  return r.ok;
}

/** Runs one op; errors become their errno name so both sides compare. */
export async function runOp(ctx: RunContext, o: Op): Promise<OpResult> {
  try {
    return { ok: await exec(ctx, o) };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code === 'string') return { err: code };
    throw err;
  }
}

export function closeAll(ctx: RunContext): void {
  for (const n of ctx.fds.values()) {
    try {
      fs.closeSync(n);
    } catch {
      /* already closed */
    }
  }
  ctx.fds.clear();
}
