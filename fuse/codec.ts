// Reading requests and writing replies of the FUSE kernel protocol: fixed little-endian
// structs (offsets from include/uapi/linux/fuse.h), NUL-terminated names, 8-byte aligned
// directory records. Pure functions over Buffers, no I/O.
import {
  ATTR_SIZE,
  DIRENT_HEADER_SIZE,
  DIRENTPLUS_HEADER_SIZE,
  ENTRY_OUT_SIZE,
  OUT_HEADER_SIZE,
  direntAlign,
} from './abi.js';
import type { Attr, DirEntryPlus, EntryOut, StatfsOut } from './types.js';

const TWO_32 = 4294967296;

/** u64 at off as a number (exact below 2^53, which covers inode numbers, handles, sizes). */
export function readU64(buf: Buffer, off: number): number {
  return buf.readUInt32LE(off) + buf.readUInt32LE(off + 4) * TWO_32;
}

/** s64 at off as a number (lseek offsets, inval offsets). */
export function readS64(buf: Buffer, off: number): number {
  const hi = buf.readInt32LE(off + 4);
  return buf.readUInt32LE(off) + hi * TWO_32;
}

export function writeU64(buf: Buffer, off: number, n: number): void {
  if (n >= 0 && n <= Number.MAX_SAFE_INTEGER) {
    buf.writeUInt32LE(n % TWO_32, off);
    buf.writeUInt32LE(Math.floor(n / TWO_32), off + 4);
  } else {
    // Negative (times before 1970, -1 offsets) or beyond 2^53: two's complement through BigInt.
    buf.writeBigInt64LE(BigInt(Math.trunc(n)), off);
  }
}

/** A NUL-terminated name starting at off, ending before end; returns the name and the offset after the NUL. */
export function readCString(buf: Buffer, off: number, end: number): [string, number] {
  let nul = buf.indexOf(0, off);
  if (nul < 0 || nul >= end) nul = end; // tolerate a missing terminator at the end of the request
  return [buf.toString('utf8', off, nul), nul + 1];
}

/**
 * Milliseconds as [seconds, nanoseconds], seconds floored so nsec is in [0, 1e9). The
 * nanoseconds are rounded to whole microseconds: a double of today's epoch in milliseconds
 * resolves about 0.24 us, so finer digits would be noise (and the kernel is told at INIT
 * that our time granularity is 1 us, so it truncates what it sends us the same way).
 */
export function msToTimespec(ms: number): [number, number] {
  if (!Number.isFinite(ms)) return [0, 0];
  let sec = Math.floor(ms / 1000);
  let usec = Math.round((ms - sec * 1000) * 1000);
  if (usec >= 1_000_000) {
    sec += 1;
    usec -= 1_000_000;
  }
  if (usec < 0) usec = 0;
  return [sec, usec * 1000];
}

export function timespecToMs(sec: number, nsec: number): number {
  return sec * 1000 + nsec / 1e6;
}

/** A cache timeout in ms as [sec, nsec] for entry_valid/attr_valid (never negative). */
function timeoutParts(ms: number): [number, number] {
  if (!(ms > 0)) return [0, 0];
  if (ms > 1e15) ms = 1e15; // "forever" without overflowing the kernel's jiffies math
  return msToTimespec(ms);
}

/** struct fuse_attr (88 bytes) at off. */
export function writeAttr(buf: Buffer, off: number, a: Attr): void {
  const [as, ans] = msToTimespec(a.atimeMs);
  const [ms, mns] = msToTimespec(a.mtimeMs);
  const [cs, cns] = msToTimespec(a.ctimeMs);
  writeU64(buf, off, a.ino);
  writeU64(buf, off + 8, a.size);
  writeU64(buf, off + 16, a.blocks);
  writeU64(buf, off + 24, as);
  writeU64(buf, off + 32, ms);
  writeU64(buf, off + 40, cs);
  buf.writeUInt32LE(ans, off + 48);
  buf.writeUInt32LE(mns, off + 52);
  buf.writeUInt32LE(cns, off + 56);
  buf.writeUInt32LE(a.mode >>> 0, off + 60);
  buf.writeUInt32LE(a.nlink >>> 0, off + 64);
  buf.writeUInt32LE(a.uid >>> 0, off + 68);
  buf.writeUInt32LE(a.gid >>> 0, off + 72);
  buf.writeUInt32LE(a.rdev >>> 0, off + 76);
  buf.writeUInt32LE(a.blksize >>> 0, off + 80);
  buf.writeUInt32LE(0, off + 84); // flags
}

/** struct fuse_entry_out (128 bytes) at off. ino 0 = a negative entry the kernel may cache. */
export function writeEntryOut(buf: Buffer, off: number, e: EntryOut | null, negativeTimeoutMs = 0): void {
  if (!e) {
    buf.fill(0, off, off + ENTRY_OUT_SIZE);
    const [es, ens] = timeoutParts(negativeTimeoutMs);
    writeU64(buf, off + 16, es);
    buf.writeUInt32LE(ens, off + 32);
    return;
  }
  const [es, ens] = timeoutParts(e.entryTimeoutMs);
  const [as, ans] = timeoutParts(e.attrTimeoutMs);
  writeU64(buf, off, e.attr.ino);
  writeU64(buf, off + 8, e.generation ?? 0);
  writeU64(buf, off + 16, es);
  writeU64(buf, off + 24, as);
  buf.writeUInt32LE(ens, off + 32);
  buf.writeUInt32LE(ans, off + 36);
  writeAttr(buf, off + 40, e.attr);
}

/** struct fuse_attr_out (104 bytes) at off. */
export function writeAttrOut(buf: Buffer, off: number, attr: Attr, attrTimeoutMs: number): void {
  const [as, ans] = timeoutParts(attrTimeoutMs);
  writeU64(buf, off, as);
  buf.writeUInt32LE(ans, off + 8);
  buf.writeUInt32LE(0, off + 12);
  writeAttr(buf, off + 16, attr);
}

/** struct fuse_kstatfs (80 bytes) at off. */
export function writeStatfs(buf: Buffer, off: number, s: StatfsOut): void {
  buf.fill(0, off, off + 80);
  writeU64(buf, off, s.blocks);
  writeU64(buf, off + 8, s.bfree);
  writeU64(buf, off + 16, s.bavail);
  writeU64(buf, off + 24, s.files);
  writeU64(buf, off + 32, s.ffree);
  buf.writeUInt32LE(s.bsize >>> 0, off + 40);
  buf.writeUInt32LE(s.namelen >>> 0, off + 44);
  buf.writeUInt32LE(s.frsize >>> 0, off + 48);
}

/** struct fuse_out_header at the start of buf. */
export function writeOutHeader(buf: Buffer, len: number, error: number, unique: bigint): void {
  buf.writeUInt32LE(len, 0);
  buf.writeInt32LE(error, 4);
  buf.writeBigUInt64LE(unique, 8);
}

/** A reply buffer: out header (filled) followed by bodySize bytes for the caller to fill. */
export function allocReply(unique: bigint, bodySize: number): Buffer {
  const buf = Buffer.allocUnsafe(OUT_HEADER_SIZE + bodySize);
  writeOutHeader(buf, OUT_HEADER_SIZE + bodySize, 0, unique);
  return buf;
}

/** Record size of one fuse_dirent (plus = fuse_direntplus) with a name of nameLen bytes. */
export function direntSize(nameLen: number, plus: boolean): number {
  return direntAlign((plus ? DIRENTPLUS_HEADER_SIZE : DIRENT_HEADER_SIZE) + nameLen);
}

/**
 * Writes one directory record at off if it fits before `limit`; returns the offset after it,
 * or -1 if it does not fit. For READDIRPLUS, `e.entry` absent sends a zero entry_out, which
 * the kernel takes as "no attributes" (no lookup reference).
 */
export function packDirent(buf: Buffer, off: number, limit: number, e: DirEntryPlus, plus: boolean): number {
  const nameLen = Buffer.byteLength(e.name);
  const size = direntSize(nameLen, plus);
  if (off + size > limit) return -1;
  let d = off;
  if (plus) {
    writeEntryOut(buf, off, e.entry ?? null);
    d = off + ENTRY_OUT_SIZE;
  }
  writeU64(buf, d, e.ino);
  writeU64(buf, d + 8, e.offset);
  buf.writeUInt32LE(nameLen, d + 16);
  buf.writeUInt32LE((e.type & 0o170000) >>> 12, d + 20); // DT_* = S_IFMT >> 12
  buf.write(e.name, d + DIRENT_HEADER_SIZE, nameLen, 'utf8');
  const end = off + size;
  buf.fill(0, d + DIRENT_HEADER_SIZE + nameLen, end);
  return end;
}

export { ATTR_SIZE };
