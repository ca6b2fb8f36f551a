// tierfs dump / load round trip: a tree with hard links, symlinks, xattrs, a sparse file and a
// file of many slices is dumped (gzip), loaded into an empty filesystem on the same bucket,
// and read back through a mount of the copy: every name, attribute, link count, symlink,
// xattr and byte is the same, and the bucket holds no new objects (they are shared).
// And point in time: a dump taken while a writer renames a file back and forth between two
// directories and creates numbered files in ten directories loads into the tree of one
// instant (exactly one of the two names, a gapless prefix of the numbers).
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeSync, writeFileSync, ftruncateSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { RemoteMetaClient } from '../../../metaserver/client.js';
import { FsSnapshot } from '../../../metaserver/dump-snapshot.js';
import { ROOT_INO, S_IFDIR, S_IFREG } from '../../../metaserver/meta-client.js';
import { cliPath } from '../../support/process.js';
import { startCluster, type TestCluster } from '../support/cluster.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Everything a round trip must keep, per path, from a mount. */
function describeTree(root: string, xattrs: Map<string, Record<string, string>>): Map<string, unknown> {
  const out = new Map<string, unknown>();
  const walk = (rel: string) => {
    const path = join(root, rel);
    const st = lstatSync(path);
    const base = { mode: st.mode, uid: st.uid, gid: st.gid, nlink: st.nlink, size: st.size, mtimeMs: Math.round(st.mtimeMs), xattrs: xattrs.get(rel) ?? {} };
    if (st.isSymbolicLink()) out.set(rel, { ...base, target: readlinkSync(path) });
    else if (st.isFile()) out.set(rel, { ...base, sha: sha(readFileSync(path)), ino: null });
    else {
      out.set(rel, base);
      for (const name of readdirSync(path).sort()) walk(rel === '' ? name : `${rel}/${name}`);
    }
  };
  walk('');
  return out;
}

describe('dump and load', () => {
  let cluster: TestCluster;
  let s3: S3Client;

  const tierfs = (...args: string[]) => execFileSync(process.execPath, [cliPath, ...args, '--mds', cluster.mds.info.address], { encoding: 'utf8' });
  const objects = async (): Promise<number> => {
    let n = 0;
    let token: string | undefined;
    do {
      const r = await s3.send(new ListObjectsV2Command({ Bucket: cluster.s3.bucket, ContinuationToken: token }));
      n += r.KeyCount ?? 0;
      token = r.NextContinuationToken;
    } while (token);
    return n;
  };
  /** xattrs of each path, read through the metaservers (no attr tools needed). */
  const xattrsOf = async (fs: string, paths: string[]): Promise<Map<string, Record<string, string>>> => {
    const meta = new RemoteMetaClient({ fsId: (await cluster.client.getFsInfo(fs)).fs_id, mds: cluster.client });
    try {
      const out = new Map<string, Record<string, string>>();
      for (const p of paths) {
        let ino = ROOT_INO;
        for (const name of p.split('/').filter(Boolean)) ino = (await meta.lookup(ino, name)).ino;
        const x: Record<string, string> = {};
        for (const n of (await meta.listXattr(ino)).sort()) x[n] = (await meta.getXattr(ino, n)).toString('hex');
        out.set(p, x);
      }
      return out;
    } finally {
      await meta.close();
    }
  };

  before(async () => {
    cluster = await startCluster('dump');
    s3 = new S3Client({ endpoint: cluster.s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: cluster.s3.accessKeyId, secretAccessKey: cluster.s3.secretAccessKey } });
  });
  after(async () => {
    s3?.destroy();
    await cluster?.close();
  });

  test('a round trip keeps every name, attribute, link, symlink, xattr and byte, sharing the objects', async (t) => {
    const src = (await cluster.mount({ name: 'src', cacheTimeoutSec: 0 })).mountpoint;
    mkdirSync(join(src, 'd', 'deep'), { recursive: true });
    writeFileSync(join(src, 'd', 'small'), 'hello');
    // Many slices: separate writes, each committed at its close, over two chunks (4 MiB).
    const multi = join(src, 'd', 'multi');
    for (let i = 0; i < 6; i++) {
      const fd = openSync(multi, i === 0 ? 'w' : 'r+');
      writeSync(fd, randomBytes(1536 * 1024), 0, 1536 * 1024, i * 1000 * 1024);
      closeSync(fd);
    }
    const sparse = openSync(join(src, 'd', 'deep', 'sparse'), 'w');
    ftruncateSync(sparse, 20 << 20);
    writeSync(sparse, randomBytes(4096), 0, 4096, 15 << 20);
    closeSync(sparse);
    linkSync(join(src, 'd', 'small'), join(src, 'hard'));
    symlinkSync('d/deep/sparse', join(src, 'link'));
    execFileSync('chmod', ['0640', join(src, 'd', 'small')]);
    execFileSync('chown', ['1234:5678', join(src, 'd', 'multi')]);
    const meta = new RemoteMetaClient({ fsId: (await cluster.client.getFsInfo(cluster.fsName)).fs_id, mds: cluster.client });
    const small = (await meta.lookup((await meta.lookup(ROOT_INO, 'd')).ino, 'small')).ino;
    await meta.setXattr(small, 'user.color', Buffer.from('blue'), 0);
    await meta.setXattr((await meta.lookup(ROOT_INO, 'd')).ino, 'user.bin', Buffer.from([0, 1, 2, 255]), 0);
    await meta.close();
    const paths = ['', 'd', 'd/small', 'hard', 'd/multi', 'd/deep', 'd/deep/sparse', 'link'];
    const before = describeTree(src, await xattrsOf(cluster.fsName, paths));

    const file = join(cluster.dir, 'meta.jsonl.gz');
    tierfs('dump', '--fs', cluster.fsName, file, '--no-progress');
    const objectsBefore = await objects();
    await cluster.client.createFs({
      name: 'copy', fs_type: 's3', block_size: 1 << 20, chunk_size: 4 << 20,
      s3: { endpoint: cluster.s3.endpoint, bucket: cluster.s3.bucket, access_key: cluster.s3.accessKeyId, secret_key: cluster.s3.secretAccessKey, region: 'us-east-1', key_prefix: `${cluster.fsName}/` },
    });
    const load = spawnSync(process.execPath, [cliPath, 'load', '--fs', 'copy', file, '--no-progress', '--mds', cluster.mds.info.address], { encoding: 'utf8' });
    assert.equal(load.status, 0, load.stderr);
    assert.match(load.stderr, new RegExp(`warning: ${cluster.fsName}, the filesystem this dump was taken from, still exists`), 'load warns that the copy reads the living source\'s objects');
    const copy = (await cluster.mount({ name: 'copy', fs: 'copy', cacheTimeoutSec: 0 })).mountpoint;
    const after = describeTree(copy, await xattrsOf('copy', paths));
    assert.deepEqual([...after.keys()], [...before.keys()]);
    for (const [path, want] of before) assert.deepEqual(after.get(path), want, `${path || '/'} differs after the round trip`);
    assert.equal(lstatSync(join(copy, 'hard')).ino, lstatSync(join(copy, 'd', 'small')).ino, 'the hard link is one inode');
    assert.equal(await objects(), objectsBefore, 'no object was copied');
    t.diagnostic(`${before.size} paths, ${objectsBefore} objects shared`);

    assert.throws(() => tierfs('load', '--fs', 'copy', file, '--no-progress'), (err: { stderr?: string }) => /not empty/.test(err.stderr ?? ''));
  });
  test('a dump taken while a writer changes the tree is the tree of one instant', async (t) => {
    const fsId = (await cluster.client.getFsInfo(cluster.fsName)).fs_id;
    const meta = new RemoteMetaClient({ fsId, mds: cluster.client });
    const dir = { mode: S_IFDIR | 0o755, uid: 0, gid: 0 };
    const file = { mode: S_IFREG | 0o644, uid: 0, gid: 0 };
    // One top-level directory: its subtree lives in one copyset, dumped at one Raft index.
    const top = (await meta.createNode(ROOT_INO, 'pit', dir)).ino;
    const d1 = (await meta.createNode(top, 'd1', dir)).ino;
    const d2 = (await meta.createNode(top, 'd2', dir)).ino;
    const n = (await meta.createNode(top, 'n', dir)).ino;
    const buckets: number[] = [];
    for (let i = 0; i < 10; i++) buckets.push((await meta.createNode(n, String(i), dir)).ino);
    await meta.createNode(d1, 'a', file);
    let created = 0;
    let stop = false;
    // Each step: move the file to the other name, then create the next numbered file.
    const writer = (async () => {
      for (let inD1 = true; !stop; inD1 = !inD1) {
        await (inD1 ? meta.rename(d1, 'a', d2, 'b') : meta.rename(d2, 'b', d1, 'a'));
        await meta.createNode(buckets[created % 10]!, `f${created}`, file);
        created++;
      }
    })();
    try {
      while (created < 30) await new Promise((r) => setTimeout(r, 20));
      const atStart = created;
      const dump = join(cluster.dir, 'pit.jsonl');
      await promisify(execFile)(process.execPath, [cliPath, 'dump', '--fs', cluster.fsName, dump, '--no-progress', '--mds', cluster.mds.info.address]);
      const atEnd = created;
      stop = true;
      await writer;
      assert.ok(atEnd > atStart, `the writer went on during the dump (${atStart} -> ${atEnd} files)`);
      const header = JSON.parse(readFileSync(dump, 'utf8').split('\n')[0]!) as { copysets: Array<{ appliedIndex: number }> };
      assert.ok(header.copysets.length > 0 && header.copysets.every((c) => c.appliedIndex > 0), 'the header records each copyset\'s index');

      await cluster.client.createFs({
        name: 'pit', fs_type: 's3', block_size: 1 << 20, chunk_size: 4 << 20,
        s3: { endpoint: cluster.s3.endpoint, bucket: cluster.s3.bucket, access_key: cluster.s3.accessKeyId, secret_key: cluster.s3.secretAccessKey, region: 'us-east-1', key_prefix: `${cluster.fsName}/` },
      });
      tierfs('load', '--fs', 'pit', dump, '--no-progress');
      const loaded = new RemoteMetaClient({ fsId: (await cluster.client.getFsInfo('pit')).fs_id, mds: cluster.client });
      try {
        const names = async (ino: number) => (await loaded.listDentries(ino, '', 100_000)).map((d) => d.name);
        const ltop = (await loaded.lookup(ROOT_INO, 'pit')).ino;
        const moved = [...(await names((await loaded.lookup(ltop, 'd1')).ino)), ...(await names((await loaded.lookup(ltop, 'd2')).ino))];
        assert.equal(moved.length, 1, `exactly one of d1/a and d2/b: ${moved.join(', ')}`);
        const ln = (await loaded.lookup(ltop, 'n')).ino;
        const numbers: number[] = [];
        for (let i = 0; i < 10; i++) numbers.push(...(await names((await loaded.lookup(ln, String(i))).ino)).map((f) => Number(f.slice(1))));
        numbers.sort((a, b) => a - b);
        assert.ok(numbers.length >= atStart && numbers.length <= atEnd, `${numbers.length} files, between ${atStart} and ${atEnd}`);
        assert.deepEqual(numbers, numbers.map((_, i) => i), 'the numbered files are a gapless prefix');
        t.diagnostic(`dump at ${numbers.length} files while the writer went from ${atStart} to ${atEnd}`);
      } finally {
        await loaded.close();
      }
    } finally {
      stop = true;
      await writer.catch(() => undefined);
      await meta.close();
    }
  });
  test('a dump follows NOT_LEADER to each copyset\'s leader when the MDS names a follower', async () => {
    const fsId = (await cluster.client.getFsInfo(cluster.fsName)).fs_id;
    // The MDS's view with every copyset's leader replaced by one of its followers.
    const misled = {
      listPartitions: async (id: number) => (await cluster.client.listPartitions(id)).map((l) => ({ ...l, leader: l.peers.find((p) => p !== l.leader) ?? l.leader })),
      createPartitions: (id: number, count: number) => cluster.client.createPartitions(id, count),
      getCopysetLocation: (pool: number, copyset: number) => cluster.client.getCopysetLocation(pool, copyset),
    };
    const snap = await FsSnapshot.take(misled, fsId);
    try {
      const copysets = new Set((await cluster.client.listPartitions(fsId)).map((l) => `${l.partition!.pool_id}.${l.partition!.copyset_id}`));
      assert.deepEqual(new Set(snap.points.map((p) => `${p.pool}.${p.copyset}`)), copysets, 'every copyset of the fs was read');
      assert.ok(snap.points.every((p) => p.appliedIndex > 0));
      assert.equal((await snap.inodeLine(ROOT_INO))?.ino, ROOT_INO);
      assert.ok((await snap.listDentries(ROOT_INO, '', 1000)).some((d) => d.name === 'pit'), 'the names of the root are in it');
    } finally {
      await snap.close();
    }
  });
});
