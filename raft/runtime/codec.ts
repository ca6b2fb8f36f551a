// Compact binary encoding of messages, entries and persisted state (no JSON on the hot path).
import type { ConfState, Entry, EntryType, HardState, Message, MsgType, SnapshotMeta } from '../core/types.js';

class Writer {
  buf: Buffer;
  pos = 0;
  constructor(size = 256) {
    this.buf = Buffer.allocUnsafe(size);
  }
  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const b = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(b, 0, 0, this.pos);
    this.buf = b;
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }
  /** Non-negative integers up to 2^48 (terms, indexes). */
  u48(v: number): void {
    this.ensure(6);
    this.buf.writeUIntLE(v, this.pos, 6);
    this.pos += 6;
  }
  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v, this.pos);
    this.pos += 4;
  }
  bytes(b: Buffer): void {
    this.u32(b.length);
    this.ensure(b.length);
    b.copy(this.buf, this.pos);
    this.pos += b.length;
  }
  str(s: string): void {
    const n = Buffer.byteLength(s);
    this.u32(n);
    this.ensure(n);
    this.buf.write(s, this.pos, 'utf8');
    this.pos += n;
  }
  done(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  u8(): number {
    return this.buf[this.pos++]!;
  }
  u48(): number {
    const v = this.buf.readUIntLE(this.pos, 6);
    this.pos += 6;
    return v;
  }
  u32(): number {
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  bytes(): Buffer {
    const n = this.u32();
    // Copy so a message does not pin the whole received batch in memory.
    const b = Buffer.from(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return b;
  }
  str(): string {
    const n = this.u32();
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
}

function writeEntry(w: Writer, e: Entry): void {
  w.u48(e.term);
  w.u48(e.index);
  w.u8(e.type);
  w.bytes(e.data);
}

function readEntry(r: Reader): Entry {
  const term = r.u48();
  const index = r.u48();
  const type = r.u8() as EntryType;
  return { term, index, type, data: r.bytes() };
}

function writeConf(w: Writer, c: ConfState): void {
  w.u32(c.voters.length);
  for (const v of c.voters) w.str(v);
  w.u32(c.learners.length);
  for (const v of c.learners) w.str(v);
  w.u48(c.epoch ?? 0);
}

function readConf(r: Reader): ConfState {
  const voters: string[] = [];
  for (let n = r.u32(); n > 0; n--) voters.push(r.str());
  const learners: string[] = [];
  for (let n = r.u32(); n > 0; n--) learners.push(r.str());
  return { voters, learners, epoch: r.u48() };
}

function writeSnapMeta(w: Writer, m: SnapshotMeta): void {
  w.u48(m.index);
  w.u48(m.term);
  writeConf(w, m.conf);
}

function readSnapMeta(r: Reader): SnapshotMeta {
  const index = r.u48();
  const term = r.u48();
  return { index, term, conf: readConf(r) };
}

const F_REJECT = 1;
const F_SNAP = 2;
const F_CTX = 4;

/** Encodes a message of group `groupId` (snapshot data is not included: it travels as chunks). */
export function encodeMessage(groupId: string, m: Message): Buffer {
  let size = 64 + groupId.length + m.to.length + m.from.length;
  for (const e of m.entries) size += 17 + e.data.length;
  const w = new Writer(size);
  w.str(groupId);
  w.u8(m.type);
  w.u8((m.reject ? F_REJECT : 0) | (m.snapshot ? F_SNAP : 0) | (m.context ? F_CTX : 0));
  w.str(m.to);
  w.str(m.from);
  w.u48(m.term);
  w.u48(m.logTerm);
  w.u48(m.index);
  w.u48(m.commit);
  w.u48(m.rejectHint);
  w.u32(m.entries.length);
  for (const e of m.entries) writeEntry(w, e);
  if (m.context) w.bytes(m.context);
  if (m.snapshot) writeSnapMeta(w, m.snapshot.meta);
  return w.done();
}

export function decodeMessage(b: Buffer): { groupId: string; msg: Message } {
  const r = new Reader(b);
  const groupId = r.str();
  const type = r.u8() as MsgType;
  const flags = r.u8();
  const to = r.str();
  const from = r.str();
  const term = r.u48();
  const logTerm = r.u48();
  const index = r.u48();
  const commit = r.u48();
  const rejectHint = r.u48();
  const entries: Entry[] = [];
  for (let n = r.u32(); n > 0; n--) entries.push(readEntry(r));
  const msg: Message = { type, to, from, term, logTerm, index, commit, rejectHint, entries, reject: (flags & F_REJECT) !== 0 };
  if (flags & F_CTX) msg.context = r.bytes();
  if (flags & F_SNAP) msg.snapshot = { meta: readSnapMeta(r) };
  return { groupId, msg };
}

export function encodeEntry(e: Entry): Buffer {
  const w = new Writer(17 + e.data.length);
  writeEntry(w, e);
  return w.done();
}

export function decodeEntry(b: Buffer): Entry {
  return readEntry(new Reader(b));
}

export function encodeHardState(hs: HardState): Buffer {
  const w = new Writer(32);
  w.u48(hs.term);
  w.str(hs.vote);
  w.u48(hs.commit);
  return w.done();
}

export function decodeHardState(b: Buffer): HardState {
  const r = new Reader(b);
  return { term: r.u48(), vote: r.str(), commit: r.u48() };
}

export function encodeSnapshotMeta(m: SnapshotMeta): Buffer {
  const w = new Writer(64);
  writeSnapMeta(w, m);
  return w.done();
}

export function decodeSnapshotMeta(b: Buffer): SnapshotMeta {
  return readSnapMeta(new Reader(b));
}
