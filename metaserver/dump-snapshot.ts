// The point-in-time source of `tierfs dump`: every copyset holding a partition of the
// filesystem streams that filesystem's records as they are at one applied index
// (dump-service.ts); they are spooled to a temporary level database beside the dump and the
// tree is walked from there (dump.ts `dumpTree`), so the walk sees no change made meanwhile.
//
// What "consistent" means: each copyset's records are its state at one Raft index — every
// operation that copyset applied is wholly in the dump or wholly out of it. A filesystem
// whose partitions all sit in one copyset is therefore dumped as it was at one instant. With
// several copysets the instants differ, so the records are taken under a dump fence
// (dump-fence.ts): no rename across copysets is in doubt meanwhile, so each is in all
// copysets' records or in none, and a renamed name is in the dump exactly once. Operations
// of several entries without a transaction (a create whose inode lives in another copyset
// than its name, an unlink whose inode does) can still be half in: the walk then drops a name
// whose inode is not in the dump (counted as `skipped`), and an inode no name reaches is left
// out, so the loaded tree is always a well-formed tree.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { CHANNEL_OPTIONS, clientCredentials, loadProto } from '../common/grpc.js';
import { check, StatusCode, TierfsError } from '../common/status.js';
import type { ProtoGrpcType } from '../proto/gen/metadump.js';
import type { DumpCopysetChunk__Output } from '../proto/gen/tierfs/metadump/DumpCopysetChunk.js';
import { CopysetKeys, parseHex, rangeEnd } from './keys.js';
import type { Dentry, SliceRecord } from './meta-client.js';
import type { DentryRecord, InodeRecord } from './records.js';
import type { PartitionDirectory, PartitionLocationInfo } from './partition-router.js';
import { decodeFrames } from './snapshot-frames.js';
import type { DumpInode, DumpSource } from './dump.js';
import { DumpFence, type CopysetAddress } from './dump-fence.js';
import { atCopysetLeader } from './dump-leader.js';

/** Where one copyset's records were taken. */
export interface CopysetPoint {
  pool: number;
  copyset: number;
  appliedIndex: number;
  term: number;
  partitions: number[];
}

/** A copyset's stream whose first message arrived: its records are taken, not yet read. */
interface OpenStream {
  point: CopysetPoint;
  chunks: AsyncIterator<DumpCopysetChunk__Output>;
  cancel(): void;
  close(): void;
}

interface Route {
  start: number;
  end: number;
  pid: number;
  keys: CopysetKeys;
}

/** How long one copyset is tried (leader changes, a restarting peer) before the dump fails. */
const COPYSET_DEADLINE_MS = 60_000;
/** The fence's lease: how long a dump that died keeps renames across copysets refused. */
const FENCE_LEASE_MS = 30_000;
/** Attempts when the fence lapsed or a copyset joined the filesystem while the records were taken. */
const ATTEMPTS = 5;

export class FsSnapshot implements DumpSource {
  private routes: Route[] = [];
  readonly points: CopysetPoint[] = [];

  private constructor(
    private readonly fsId: number,
    private readonly spool: Level<string, string>,
    private readonly spoolDir: string,
  ) {}

  /**
   * Takes the records of every copyset of filesystem `fsId` under a dump fence; `onRecords`
   * counts what arrived. `fenceLeaseMs`: the fence's lease (tests shorten it).
   */
  static async take(directory: PartitionDirectory, fsId: number, onRecords?: (n: number) => void, fenceLeaseMs = FENCE_LEASE_MS): Promise<FsSnapshot> {
    const spoolDir = await mkdtemp(join(process.env.TIERFS_DUMP_SPOOL ?? tmpdir(), 'tierfs-dump-'));
    const snap = new FsSnapshot(fsId, new Level<string, string>(spoolDir), spoolDir);
    try {
      await snap.spool.open();
      let records = 0;
      for (let attempt = 1; ; attempt++) {
        const list = await snap.partitionsOf(directory);
        const copysets = copysetsOf(list);
        const fence = await DumpFence.raise(fsId, copysets, fenceLeaseMs);
        let streams: OpenStream[] = [];
        let consistent = false;
        try {
          await fence.drained();
          // Every copyset's records are taken (the first message of its stream) while the
          // fence holds; they stream after it is lifted, so renames wait only that long.
          const opened = await Promise.allSettled(copysets.map((c) => snap.openCopyset(c)));
          streams = opened.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
          const failed = opened.find((o) => o.status === 'rejected');
          if (failed) throw failed.reason; // the opened ones are cancelled below
          // A copyset that got its first partition of the fs meanwhile was not fenced, and its
          // inodes may be named by the records taken: take everything again.
          const joined = copysetsOf(await snap.partitionsOf(directory)).some((c) => !copysets.some((d) => d.pool === c.pool && d.copyset === c.copyset));
          consistent = !joined && (await fence.held());
        } finally {
          await fence.lift();
          if (!consistent) for (const s of streams) s.cancel();
        }
        if (consistent) {
          try {
            await Promise.all(streams.map((s) => snap.spoolStream(s, (n) => onRecords?.((records += n)))));
            snap.points.push(...streams.map((s) => s.point));
            const now = await snap.partitionsOf(directory);
            snap.routes = now.map((l) => ({ start: l.partition!.start, end: l.partition!.end, pid: l.partition!.partition_id, keys: new CopysetKeys(l.partition!.pool_id, l.partition!.copyset_id) }));
            return snap;
          } catch (err) {
            for (const s of streams) s.cancel();
            if (attempt >= ATTEMPTS) throw err; // a leader lost mid-stream: its records must be taken again, under a fence
          }
        } else if (attempt >= ATTEMPTS) {
          throw new TierfsError(StatusCode.UNAVAILABLE, `dump: the dump fence lapsed or the filesystem got a new copyset in each of ${ATTEMPTS} attempts`);
        }
        await snap.spool.clear();
      }
    } catch (err) {
      await snap.close();
      throw err;
    }
  }

  private async partitionsOf(directory: PartitionDirectory): Promise<PartitionLocationInfo[]> {
    return (await directory.listPartitions(this.fsId)).filter((l) => l.partition?.fs_id === this.fsId);
  }

  /** Opens one copyset's stream at its leader (following NOT_LEADER hints) up to its first message: its records are taken. */
  private openCopyset(c: CopysetAddress): Promise<OpenStream> {
    const Ctor = loadProto<ProtoGrpcType>('metadump.proto').tierfs.metadump.MetaDumpService;
    return atCopysetLeader(c, 'dump', COPYSET_DEADLINE_MS, async (address) => {
      const client = new Ctor(address, clientCredentials(), CHANNEL_OPTIONS);
      const stream = client.DumpCopyset({ pool_id: c.pool, copyset_id: c.copyset, fs_id: this.fsId });
      const chunks = (stream as AsyncIterable<DumpCopysetChunk__Output>)[Symbol.asyncIterator]();
      try {
        const first = await chunks.next();
        if (first.done) throw new TierfsError(StatusCode.UNAVAILABLE, 'the stream ended before its first message');
        check(first.value.status, `dump of copyset ${c.pool}.${c.copyset}`);
        const point = { pool: c.pool, copyset: c.copyset, appliedIndex: Number(first.value.applied_index), term: Number(first.value.term), partitions: first.value.partitions };
        return { point, chunks, cancel: () => { stream.cancel(); client.close(); }, close: () => client.close() };
      } catch (err) {
        stream.cancel();
        client.close();
        throw err;
      }
    });
  }

  /** Writes the rest of an opened stream (the records) into the spool. */
  private async spoolStream(s: OpenStream, onRecords: (n: number) => void): Promise<void> {
    async function* frames(): AsyncGenerator<Buffer> {
      for (let r = await s.chunks.next(); !r.done; r = await s.chunks.next()) yield r.value.frames;
    }
    try {
      for await (const pairs of decodeFrames(frames())) {
        await this.spool.batch(pairs.map(([key, value]) => ({ type: 'put' as const, key, value })));
        onRecords(pairs.length);
      }
    } finally {
      s.close();
    }
  }

  private route(ino: number): Route | undefined {
    return this.routes.find((r) => ino >= r.start && ino <= r.end);
  }

  async inodeLine(ino: number): Promise<DumpInode | null> {
    const r = this.route(ino);
    if (!r) return null;
    const raw = await this.spool.get(r.keys.inode(r.pid, ino));
    if (raw === undefined) return null;
    const { parents: _parents, xattrs, ...inode } = JSON.parse(raw) as InodeRecord;
    const chunks: Array<[number, SliceRecord[]]> = [];
    const prefix = r.keys.slicesPrefix(r.pid, ino);
    for await (const [key, value] of this.spool.iterator({ gte: prefix, lt: rangeEnd(prefix) })) {
      chunks.push([parseHex(key.slice(prefix.length)), JSON.parse(value) as SliceRecord[]]);
    }
    return { type: 'inode', ...inode, xattrs: xattrs ?? {}, chunks };
  }

  async listDentries(parent: number, last: string, count: number): Promise<Dentry[]> {
    const r = this.route(parent);
    if (!r) return [];
    const prefix = r.keys.dentryPrefix(r.pid, parent);
    const range = last ? { gt: prefix + last, lt: rangeEnd(prefix) } : { gte: prefix, lt: rangeEnd(prefix) };
    const out: Dentry[] = [];
    for await (const [key, value] of this.spool.iterator({ ...range, limit: count })) {
      const d = JSON.parse(value) as DentryRecord;
      out.push({ parent, name: key.slice(prefix.length), ino: d.ino, type: d.type });
    }
    return out;
  }

  async close(): Promise<void> {
    await this.spool.close().catch(() => undefined);
    await rm(this.spoolDir, { recursive: true, force: true });
  }
}

function copysetsOf(list: PartitionLocationInfo[]): CopysetAddress[] {
  const out = new Map<string, CopysetAddress>();
  for (const l of list) {
    const p = l.partition!;
    out.set(`${p.pool_id}.${p.copyset_id}`, { pool: p.pool_id, copyset: p.copyset_id, peers: l.peers, leader: l.leader });
  }
  return [...out.values()];
}
