// An NBD server on a unix socket (the fixed newstyle handshake of the NBD protocol,
// https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md): for hosts whose kernel
// has nbd (`nbd-client -unix PATH /dev/nbd0`), as curve-nbd does it. Options: EXPORT_NAME, GO,
// INFO, LIST, ABORT (others answered ERR_UNSUP, so clients fall back to simple replies);
// commands READ, WRITE, FLUSH, TRIM, WRITE_ZEROES, DISC, served concurrently, each reply
// written whole when its request is done.
import { createServer, type Server, type Socket } from 'node:net';
import { rmSync } from 'node:fs';

/** What the server serves: VolumeClient, or anything else with these five. */
export interface BlockDevice {
  readonly size: number;
  read(offset: number, target: Buffer): Promise<void>;
  write(offset: number, data: Buffer): Promise<void>;
  trim(offset: number, length: number): Promise<void>;
  flush(): Promise<void>;
}

const NBDMAGIC = Buffer.from('NBDMAGIC');
const IHAVEOPT = 0x49484156454f5054n;
const OPT_REPLY_MAGIC = 0x3e889045565a9n;
const REQUEST_MAGIC = 0x25609513;
const SIMPLE_REPLY_MAGIC = 0x67446698;

const FLAG_FIXED_NEWSTYLE = 1;
const FLAG_NO_ZEROES = 2;

const OPT_EXPORT_NAME = 1;
const OPT_ABORT = 2;
const OPT_LIST = 3;
const OPT_INFO = 6;
const OPT_GO = 7;

const REP_ACK = 1;
const REP_SERVER = 2;
const REP_INFO = 3;
const REP_ERR_UNSUP = 0x80000001;
const REP_ERR_INVALID = 0x80000003;

const INFO_EXPORT = 0;
const INFO_BLOCK_SIZE = 3;

// Transmission flags: has flags, flush, FUA, trim, write zeroes.
const TRANSMISSION_FLAGS = 1 | 4 | 8 | 32 | 64;

const CMD_READ = 0;
const CMD_WRITE = 1;
const CMD_DISC = 2;
const CMD_FLUSH = 3;
const CMD_TRIM = 4;
const CMD_WRITE_ZEROES = 6;
const CMD_FLAG_FUA = 1;

const EIO = 5;
const EINVAL = 22;
const ENOSPC = 28;
const ENOTSUP = 95;
/** Largest READ/WRITE accepted (the block size info tells clients). */
const MAX_REQUEST = 32 << 20;

export interface NbdServer {
  readonly path: string;
  /** Requests served (tests, metrics). */
  readonly counters: Record<'read' | 'write' | 'flush' | 'trim' | 'zeroes', number>;
  close(): Promise<void>;
}

/** Reads exactly what the parser asks for from a socket, in order. */
class Reader {
  private buf: Buffer = Buffer.alloc(0);
  private waiting: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | null = null;
  private ended: Error | null = null;

  constructor(socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
      this.pump();
    });
    const end = () => {
      this.ended = new Error('connection closed');
      this.pump();
    };
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', end);
  }

  private pump(): void {
    const w = this.waiting;
    if (!w) return;
    if (this.buf.length >= w.n) {
      this.waiting = null;
      const out = this.buf.subarray(0, w.n);
      this.buf = this.buf.subarray(w.n);
      w.resolve(Buffer.from(out));
    } else if (this.ended) {
      this.waiting = null;
      w.reject(this.ended);
    }
  }

  take(n: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.waiting = { n, resolve, reject };
      this.pump();
    });
  }
}

function optReply(option: number, type: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(20);
  h.writeBigUInt64BE(OPT_REPLY_MAGIC, 0);
  h.writeUInt32BE(option, 8);
  h.writeUInt32BE(type, 12);
  h.writeUInt32BE(data.length, 16);
  return Buffer.concat([h, data]);
}

function simpleReply(handle: Buffer, error: number, data?: Buffer): Buffer {
  const h = Buffer.alloc(16 + (data?.length ?? 0));
  h.writeUInt32BE(SIMPLE_REPLY_MAGIC, 0);
  h.writeUInt32BE(error, 4);
  handle.copy(h, 8);
  data?.copy(h, 16);
  return h;
}

function errnoOf(err: unknown): number {
  const e = err as { errno?: number; code?: string };
  if (e?.code === 'INVALID_ARGUMENT') return EINVAL;
  if (e?.code === 'NO_SPACE') return ENOSPC;
  return typeof e?.errno === 'number' && e.errno > 0 ? e.errno : EIO;
}

export async function startNbdServer(path: string, device: BlockDevice, exportName = ''): Promise<NbdServer> {
  const counters = { read: 0, write: 0, flush: 0, trim: 0, zeroes: 0 };
  const sockets = new Set<Socket>();

  const exportInfo = (): Buffer => {
    const b = Buffer.alloc(12);
    b.writeUInt16BE(INFO_EXPORT, 0);
    b.writeBigUInt64BE(BigInt(device.size), 2);
    b.writeUInt16BE(TRANSMISSION_FLAGS, 10);
    return b;
  };
  const blockSizeInfo = (): Buffer => {
    const b = Buffer.alloc(14);
    b.writeUInt16BE(INFO_BLOCK_SIZE, 0);
    b.writeUInt32BE(1, 2);
    b.writeUInt32BE(4096, 6);
    b.writeUInt32BE(MAX_REQUEST, 10);
    return b;
  };

  /** Option haggling; resolves true when the client moves to transmission. */
  async function negotiate(sock: Socket, r: Reader): Promise<boolean> {
    const hello = Buffer.alloc(18);
    NBDMAGIC.copy(hello, 0);
    hello.writeBigUInt64BE(IHAVEOPT, 8);
    hello.writeUInt16BE(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES, 16);
    sock.write(hello);
    const clientFlags = (await r.take(4)).readUInt32BE(0);
    const noZeroes = (clientFlags & FLAG_NO_ZEROES) !== 0;
    for (;;) {
      const h = await r.take(16);
      if (h.readBigUInt64BE(0) !== IHAVEOPT) return false;
      const option = h.readUInt32BE(8);
      const len = h.readUInt32BE(12);
      if (len > 64 * 1024) return false;
      const data = await r.take(len);
      switch (option) {
        case OPT_EXPORT_NAME: {
          const reply = Buffer.alloc(10 + (noZeroes ? 0 : 124));
          reply.writeBigUInt64BE(BigInt(device.size), 0);
          reply.writeUInt16BE(TRANSMISSION_FLAGS, 8);
          sock.write(reply);
          return true;
        }
        case OPT_ABORT:
          sock.write(optReply(option, REP_ACK));
          return false;
        case OPT_LIST: {
          const name = Buffer.from(exportName);
          const d = Buffer.alloc(4 + name.length);
          d.writeUInt32BE(name.length, 0);
          name.copy(d, 4);
          sock.write(optReply(option, REP_SERVER, d));
          sock.write(optReply(option, REP_ACK));
          break;
        }
        case OPT_INFO:
        case OPT_GO: {
          if (data.length < 6) {
            sock.write(optReply(option, REP_ERR_INVALID));
            break;
          }
          sock.write(optReply(option, REP_INFO, exportInfo()));
          sock.write(optReply(option, REP_INFO, blockSizeInfo()));
          sock.write(optReply(option, REP_ACK));
          if (option === OPT_GO) return true;
          break;
        }
        default:
          sock.write(optReply(option, REP_ERR_UNSUP));
      }
    }
  }

  async function serveRequests(sock: Socket, r: Reader): Promise<void> {
    const pending = new Set<Promise<void>>();
    for (;;) {
      const h = await r.take(28);
      if (h.readUInt32BE(0) !== REQUEST_MAGIC) break;
      const flags = h.readUInt16BE(4);
      const type = h.readUInt16BE(6);
      const handle = h.subarray(8, 16);
      const offset = Number(h.readBigUInt64BE(16));
      const length = h.readUInt32BE(24);
      if (type === CMD_DISC) break;
      const data = type === CMD_WRITE ? await r.take(length) : null;
      const inRange = offset + length <= device.size;
      const run = async (): Promise<Buffer> => {
        switch (type) {
          case CMD_READ: {
            if (!inRange || length > MAX_REQUEST) return simpleReply(handle, EINVAL);
            const out = Buffer.alloc(length);
            await device.read(offset, out);
            counters.read++;
            return simpleReply(handle, 0, out);
          }
          case CMD_WRITE:
            if (!inRange) return simpleReply(handle, ENOSPC);
            await device.write(offset, data!);
            if (flags & CMD_FLAG_FUA) await device.flush();
            counters.write++;
            return simpleReply(handle, 0);
          case CMD_FLUSH:
            await device.flush();
            counters.flush++;
            return simpleReply(handle, 0);
          case CMD_TRIM:
          case CMD_WRITE_ZEROES:
            if (!inRange) return simpleReply(handle, ENOSPC);
            await device.trim(offset, length);
            if (type === CMD_TRIM) counters.trim++;
            else counters.zeroes++;
            return simpleReply(handle, 0);
          default:
            return simpleReply(handle, ENOTSUP);
        }
      };
      const p = run().then(
        (reply) => void sock.write(reply),
        (err: unknown) => void sock.write(simpleReply(handle, errnoOf(err))),
      );
      pending.add(p);
      void p.finally(() => pending.delete(p));
    }
    // DISC: finish what was asked before, then close.
    await Promise.allSettled([...pending]);
    await device.flush().catch(() => undefined);
  }

  rmSync(path, { force: true });
  const server: Server = createServer((sock) => {
    sockets.add(sock);
    sock.setNoDelay(true);
    const r = new Reader(sock);
    void (async () => {
      try {
        if (await negotiate(sock, r)) await serveRequests(sock, r);
      } catch {
        /* the client went away */
      } finally {
        sock.end();
        sockets.delete(sock);
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  return {
    path,
    counters,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          rmSync(path, { force: true });
          resolve();
        });
      }),
  };
}
