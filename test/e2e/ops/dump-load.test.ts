// tierfs dump / load round trip: a tree with hard links, symlinks, xattrs, a sparse file and a
// file of many slices is dumped (gzip), loaded into an empty filesystem on the same bucket,
// and read back through a mount of the copy: every name, attribute, link count, symlink,
// xattr and byte is the same, and the bucket holds no new objects (they are shared).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeSync, writeFileSync, ftruncateSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { RemoteMetaClient } from '../../../metaserver/client.js';
import { ROOT_INO } from '../../../metaserver/meta-client.js';
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
    tierfs('load', '--fs', 'copy', file, '--no-progress');
    const copy = (await cluster.mount({ name: 'copy', fs: 'copy', cacheTimeoutSec: 0 })).mountpoint;
    const after = describeTree(copy, await xattrsOf('copy', paths));
    assert.deepEqual([...after.keys()], [...before.keys()]);
    for (const [path, want] of before) assert.deepEqual(after.get(path), want, `${path || '/'} differs after the round trip`);
    assert.equal(lstatSync(join(copy, 'hard')).ino, lstatSync(join(copy, 'd', 'small')).ino, 'the hard link is one inode');
    assert.equal(await objects(), objectsBefore, 'no object was copied');
    t.diagnostic(`${before.size} paths, ${objectsBefore} objects shared`);

    assert.throws(() => tierfs('load', '--fs', 'copy', file, '--no-progress'), (err: { stderr?: string }) => /not empty/.test(err.stderr ?? ''));
  });
});
