// The point-in-time source of `tierfs dump`: every copyset holding a partition of the
// filesystem streams that filesystem's records as they are at one applied index
// (dump-service.ts); they are spooled to a temporary level database beside the dump and the
// tree is walked from there (dump.ts `dumpTree`), so the walk sees no change made meanwhile.
//
// What "consistent" means: each copyset's records are its state at one Raft index — every
// operation that copyset applied is wholly in the dump or wholly out of it. A filesystem
// whose partitions all sit in one copyset is therefore dumped as it was at one instant. With
// several copysets the instants differ (no barrier stops writes across them): an operation
// that spans two copysets (a create whose inode lives in another copyset than its name, a
// rename across copysets) can be in one and not in the other. The walk then drops a name
// whose inode is not in the dump (counted as `skipped`), and an inode no name reaches is left
// out, so the loaded tree is always a well-formed tree; each top-level directory's subtree
// lives in one copyset (metaserver/README.md, placement), so it is consistent in itself.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { Level } from 'level';
import { CHANNEL_OPTIONS, clientCredentials, loadProto, sleep } from '../common/grpc.js';
import { check, StatusCode, TierfsError } from '../common/status.js';
import type { ProtoGrpcType } from '../proto/gen/metadump.js';
import type { DumpCopysetChunk__Output } from '../proto/gen/tierfs/metadump/DumpCopysetChunk.js';
import { CopysetKeys, parseHex, rangeEnd } from './keys.js';
import type { Dentry, SliceRecord } from './meta-client.js';
import type { DentryRecord, InodeRecord } from './records.js';
import type { PartitionDirectory, PartitionLocationInfo } from './partition-router.js';
import { decodeFrames } from './snapshot-frames.js';
import type { DumpInode, DumpSource } from './dump.js';

/** Where one copyset's records were taken. */
export interface CopysetPoint {
  pool: number;
  copyset: number;
  appliedIndex: number;
  term: number;
  partitions: number[];
}

interface Route {
  start: number;
  end: number;
  pid: number;
  keys: CopysetKeys;
}

/** How long one copyset is tried (leader changes, a restarting peer) before the dump fails. */
const COPYSET_DEADLINE_MS = 60_000;

export class FsSnapshot implements DumpSource {
  private routes: Route[] = [];
  readonly points: CopysetPoint[] = [];

  private constructor(
    private readonly fsId: number,
    private readonly spool: Level<string, string>,
    private readonly spoolDir: string,
  ) {}

  /** Takes the records of every copyset of filesystem `fsId`; `onRecords` counts what arrived. */
  static async take(directory: PartitionDirectory, fsId: number, onRecords?: (n: number) => void): Promise<FsSnapshot> {
    const spoolDir = await mkdtemp(join(process.env.TIERFS_DUMP_SPOOL ?? tmpdir(), 'tierfs-dump-'));
    const snap = new FsSnapshot(fsId, new Level<string, string>(spoolDir), spoolDir);
    try {
      await snap.spool.open();
      let records = 0;
      // A copyset that got its first partition of the fs while the others streamed is taken
      // too: its inodes may be named by the records already taken.
      for (let round = 0; ; round++) {
        const list = (await directory.listPartitions(fsId)).filter((l) => l.partition?.fs_id === fsId);
        const todo = copysetsOf(list).filter((c) => !snap.points.some((p) => p.pool === c.pool && p.copyset === c.copyset));
        if (todo.length === 0 || round > 3) {
          snap.routes = list.map((l) => ({ start: l.partition!.start, end: l.partition!.end, pid: l.partition!.partition_id, keys: new CopysetKeys(l.partition!.pool_id, l.partition!.copyset_id) }));
          break;
        }
        for (const c of todo) {
          snap.points.push(await snap.fetchCopyset(c, (n) => onRecords?.((records += n))));
        }
      }
      return snap;
    } catch (err) {
      await snap.close();
      throw err;
    }
  }

  /** Streams one copyset's records into the spool, from its leader (following NOT_LEADER hints). */
  private async fetchCopyset(c: { pool: number; copyset: number; peers: string[]; leader: string }, onRecords: (n: number) => void): Promise<CopysetPoint> {
    const Ctor = loadProto<ProtoGrpcType>('metadump.proto').tierfs.metadump.MetaDumpService;
    const deadline = Date.now() + COPYSET_DEADLINE_MS;
    let order = [...new Set([c.leader, ...c.peers].filter((a) => a !== ''))];
    let last = `copyset ${c.pool}.${c.copyset} has no metaserver`;
    for (let next = 0; order.length > 0 && Date.now() < deadline; ) {
      const address = order[next % order.length]!;
      const client = new Ctor(address, clientCredentials(), CHANNEL_OPTIONS);
      try {
        return await this.readStream(client.DumpCopyset({ pool_id: c.pool, copyset_id: c.copyset, fs_id: this.fsId }), c, onRecords);
      } catch (err) {
        last = `${address}: ${err instanceof Error ? err.message : String(err)}`;
        const hint = err instanceof TierfsError && err.code === StatusCode.NOT_LEADER ? err.leaderHint : '';
        // Records of a failed attempt are overwritten by the next one (same keys, newer
        // values); those of names removed meanwhile are cleared first.
        await this.clearCopyset(c.pool, c.copyset);
        if (hint && hint !== address) {
          order = [hint, ...order.filter((a) => a !== hint)];
          next = 0;
          await sleep(50);
        } else {
          next++; // no leader here (or it is electing one): the next peer, after a pause
          await sleep(300);
        }
      } finally {
        client.close();
      }
    }
    throw new TierfsError(StatusCode.UNAVAILABLE, `dump of copyset ${c.pool}.${c.copyset}: no leader answered within ${COPYSET_DEADLINE_MS / 1000} s (${last})`);
  }

  private async readStream(stream: grpc.ClientReadableStream<DumpCopysetChunk__Output>, c: { pool: number; copyset: number }, onRecords: (n: number) => void): Promise<CopysetPoint> {
    let point: CopysetPoint | null = null;
    async function* frames(): AsyncGenerator<Buffer> {
      for await (const chunk of stream as AsyncIterable<DumpCopysetChunk__Output>) {
        if (!point) {
          check(chunk.status, `dump of copyset ${c.pool}.${c.copyset}`);
          point = { pool: c.pool, copyset: c.copyset, appliedIndex: chunk.applied_index, term: chunk.term, partitions: chunk.partitions };
          continue;
        }
        yield chunk.frames;
      }
    }
    for await (const pairs of decodeFrames(frames())) {
      await this.spool.batch(pairs.map(([key, value]) => ({ type: 'put' as const, key, value })));
      onRecords(pairs.length);
    }
    if (!point) throw new TierfsError(StatusCode.UNAVAILABLE, `dump of copyset ${c.pool}.${c.copyset}: the stream ended before its first message`);
    return point;
  }

  private clearCopyset(pool: number, copyset: number): Promise<void> {
    const prefix = new CopysetKeys(pool, copyset).prefix;
    return this.spool.clear({ gte: prefix, lt: rangeEnd(prefix) });
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

function copysetsOf(list: PartitionLocationInfo[]): Array<{ pool: number; copyset: number; peers: string[]; leader: string }> {
  const out = new Map<string, { pool: number; copyset: number; peers: string[]; leader: string }>();
  for (const l of list) {
    const p = l.partition!;
    out.set(`${p.pool_id}.${p.copyset_id}`, { pool: p.pool_id, copyset: p.copyset_id, peers: l.peers, leader: l.leader });
  }
  return [...out.values()];
}
