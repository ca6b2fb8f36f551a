// `npm run bench -- cachegroup`: a file read cold from S3 by one mount (which hands its blocks
// to the cache group), then by a second mount from the group (neither has a disk cache, so
// the two reads differ only in the source), then by a third warm from its local disk cache. One JSON line per case, with ratios to
// the cold S3 read of the same run. S3 (s3rver), the MDS and the cache nodes are child
// processes on this machine; a second run puts S3 behind a modelled remote link
// (remote-link.ts), the nodes staying on loopback as they would on the local network.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiskCache } from '../diskcache/index.js';
import { MdsClient } from '../mds/client.js';
import { S3Adaptor } from '../s3adaptor/adaptor.js';
import { pattern, seqRead, startTierfsChild } from '../s3adaptor/bench.js';
import { GroupBlockCache } from '../s3adaptor/cache-group.js';
import { EMBEDDED_ACCESS_KEY, EMBEDDED_SECRET_KEY } from '../s3adaptor/embedded-server.js';
import { MemoryChunkIdAllocator, MemorySliceStore } from '../s3adaptor/memory-slice-store.js';
import { createObjectStore } from '../s3adaptor/object-store.js';
import { parseLinkModel, RemoteLink } from './remote-link.js';

export interface CachegroupBenchOptions {
  sizeMiB?: number;
  nodes?: number;
  dir?: string;
  /**
   * The S3 server's link for a second run (`rtt=20ms,rate=1gbit`, the default; `off` skips it):
   * S3 in a network namespace behind tc netem, the cache nodes on loopback. Needs root.
   */
  s3Link?: string;
}

const MiB = 2 ** 20;
const BLOCK = 4 * MiB;
const CHUNK = 64 * MiB;
const DEFAULT_LINK = 'rtt=20ms,rate=1gbit';

/**
 * Runs the three reads with S3 on loopback, then again with S3 behind the modelled link (a
 * remote S3: on one machine a page-cached S3 server on loopback is faster than a real one).
 */
export async function runCachegroupBench(opts: CachegroupBenchOptions = {}): Promise<void> {
  await runOnce(opts, null);
  const model = parseLinkModel(opts.s3Link ?? DEFAULT_LINK);
  if (!model) return;
  let link: RemoteLink;
  try {
    link = new RemoteLink(model);
  } catch (err) {
    process.stderr.write(`cachegroup: modelled S3 link skipped: ${(err as Error).message}\n`);
    return;
  }
  try {
    await runOnce(opts, link);
  } finally {
    link.remove();
  }
}

async function runOnce(opts: CachegroupBenchOptions, link: RemoteLink | null): Promise<void> {
  // The bench's daemons live on loopback in a private temp dir and take no cluster key.
  process.env.TIERFS_ALLOW_UNAUTHENTICATED = '1';
  const size = Math.max(8, Math.floor(opts.sizeMiB ?? 1024)) * MiB;
  const nodeCount = Math.max(1, opts.nodes ?? 2);
  const work = mkdtempSync(join(opts.dir ?? tmpdir(), 'tierfs-bench-cg-'));
  const daemons: Array<{ stop(): void }> = [];
  const groups: GroupBlockCache[] = [];
  const bucket = 'tierfs-bench';
  try {
    const s3 = link
      ? await startTierfsChild<{ endpoint: string }>(['s3server', '--dir', join(work, 's3'), '--host', link.remoteAddress, '--port', '0', '--bucket', bucket], link.prefix)
      : await startTierfsChild<{ endpoint: string }>(['s3server', '--dir', join(work, 's3'), '--port', '0', '--bucket', bucket]);
    daemons.push(s3);
    const mdsd = await startTierfsChild<{ address: string }>(['mds', '--listen', '127.0.0.1:0', '--data-dir', join(work, 'mds')]);
    daemons.push(mdsd);
    for (let i = 0; i < nodeCount; i++) {
      daemons.push(
        await startTierfsChild<{ address: string }>(['cachenode', '--listen', '127.0.0.1:0', '--data-dir', join(work, `node${i}`), '--mds', mdsd.info.address, '--set', `capacityBytes=${4 * size}`]),
      );
    }
    const mds = new MdsClient(mdsd.info.address);
    for (let i = 0; i < 100 && (await mds.listCacheNodes()).nodes.length < nodeCount; i++) await new Promise((r) => setTimeout(r, 100));
    const store = createObjectStore({ endpoint: s3.info.endpoint, bucket, accessKeyId: EMBEDDED_ACCESS_KEY, secretAccessKey: EMBEDDED_SECRET_KEY, concurrency: 16 });
    await store.ensureBucket();
    const slices = new MemorySliceStore();
    const ids = new MemoryChunkIdAllocator();
    const base = { fsId: 1, chunkSize: CHUNK, blockSize: BLOCK, objectStore: store, sliceStore: slices, chunkIds: ids };
    const ino = 2;
    const block = pattern(MiB, 7);
    const writer = new S3Adaptor(base);
    for (let off = 0; off < size; off += MiB) await writer.write(ino, off, block);
    await writer.flush(ino);
    await writer.close();

    const mount = async (name: string, withDisk = true) => {
      const group = new GroupBlockCache({ membership: () => mds.listCacheNodes() });
      await group.start();
      groups.push(group);
      const disk = withDisk ? await DiskCache.open({ dir: join(work, name), capacityBytes: 2 * size + 256 * MiB, store, fsync: false }) : null;
      return { group, disk, adaptor: new S3Adaptor({ ...base, diskCache: disk, cacheGroup: group }) };
    };
    const emit = (c: string, mibPerS: number, cold: number, extra: object = {}) =>
      process.stdout.write(`${JSON.stringify({ bench: 'cachegroup', case: c, mib_per_s: Math.round(mibPerS * 10) / 10, baseline: 'cold-s3', baseline_mib_per_s: Math.round(cold * 10) / 10, ratio: Math.round((mibPerS / cold) * 1000) / 1000, nodes: nodeCount, size_mib: size / MiB, s3_link: link ? link.describe() : 'loopback', ...extra })}\n`);

    // 1. Cold from S3 through mount A (no disk cache: on one machine it would compete with the
    // nodes for the one disk; empty group); its blocks go to the group as it reads. Blocks the
    // group could not take while the read ran (the admission backlog is bounded, never
    // blocking the reader) are then added by a group warmup, as an operator would.
    const a = await mount('a', false);
    const cold = await seqRead(a.adaptor, ino, size, block);
    await a.adaptor.blocksAdmitted();
    const handedDuringRead = a.group.stats().handedBlocks;
    const topUp = await a.adaptor.warmup(ino, size, { group: true });
    emit('seq-read-cold-s3', cold, cold, {
      s3_fetches: a.adaptor.stats().read.s3Fetches,
      handed_to_group_during_read: handedDuringRead,
      added_by_group_warmup: topUp.fetchedBlocks,
      admissions_dropped: a.adaptor.stats().read.admissionsDropped,
    });
    await a.adaptor.close();

    // 2. Mount B, no disk cache either (as A: the two reads differ only in where blocks come
    // from, and neither pays for writing a local copy): every block from the group.
    const b = await mount('b', false);
    const fromGroup = await seqRead(b.adaptor, ino, size, block);
    const st = b.adaptor.stats().read;
    emit('seq-read-group', fromGroup, cold, { group_hits: st.groupHits, s3_fetches: st.s3Fetches, node_errors: b.group.stats().nodeErrors });
    await b.adaptor.close();
    // 3. Mount C: warm from its local disk cache (warmed up first).
    const c = await mount('c');
    await c.adaptor.warmup(ino, size);
    const disk = c.disk!;
    const c2 = new S3Adaptor({ ...base, diskCache: disk, cacheGroup: c.group });
    const warm = await seqRead(c2, ino, size, block);
    emit('seq-read-warm-local', warm, cold, { disk_hits: c2.stats().read.diskHits, s3_fetches: c2.stats().read.s3Fetches });
    await c.adaptor.close();
    await c2.close();
    await disk.close();
    mds.close();
    store.close();
  } finally {
    for (const g of groups) g.close();
    for (const d of daemons.reverse()) d.stop();
    rmSync(work, { recursive: true, force: true });
  }
}
