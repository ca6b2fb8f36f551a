// What the metadata commands (quota, trash, dump/load, info, summary) share: the MDS of a
// cluster (--mds, or the cluster `tierfs up` started in --data-dir), one filesystem's
// metadata client, and paths resolved through the metaservers rather than a mount.
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { StatusCode, TierfsError } from '../common/status.js';
import { MdsClient, type FsInfo } from '../mds/client.js';
import { RemoteMetaClient } from '../metaserver/client.js';
import { ROOT_INO } from '../metaserver/meta-client.js';
import { loadState } from './cluster-state.js';

export interface ClusterOpts {
  dataDir: string;
  mds?: string;
}

/** --data-dir / --mds on a command. */
export function clusterOptions(c: Command): Command {
  return c.option('--data-dir <dir>', 'the data dir of a cluster started by tierfs up', '.tierfs').option('--mds <addrs>', 'MDS addresses (instead of --data-dir)');
}

export function mdsAddresses(opts: ClusterOpts): string[] {
  const addresses = opts.mds ? opts.mds.split(',') : (loadState(resolve(opts.dataDir))?.mdsAddresses ?? []);
  if (addresses.length === 0) throw new TierfsError(StatusCode.INVALID_ARGUMENT, `no cluster in ${resolve(opts.dataDir)}; give --mds ADDRS`);
  return addresses;
}

export async function withMds<T>(opts: ClusterOpts, fn: (mds: MdsClient) => Promise<T>): Promise<T> {
  const mds = new MdsClient(mdsAddresses(opts), { deadlineMs: 10_000 });
  try {
    return await fn(mds);
  } finally {
    mds.close();
  }
}

/** Runs `fn` with the metadata client of filesystem `fsName`, closing everything afterwards. */
export async function withFsMeta<T>(opts: ClusterOpts, fsName: string, fn: (meta: RemoteMetaClient, info: FsInfo, mds: MdsClient) => Promise<T>): Promise<T> {
  return withMds(opts, async (mds) => {
    const info = await mds.getFsInfo(fsName);
    const meta = new RemoteMetaClient({ fsId: info.fs_id, mds });
    try {
      return await fn(meta, info, mds);
    } finally {
      await meta.close();
    }
  });
}

/** A path inside the filesystem ("/a/b", "/" for the root) -> its inode number. */
export async function resolveFsPath(meta: RemoteMetaClient, path: string): Promise<number> {
  if (!path.startsWith('/')) throw new TierfsError(StatusCode.INVALID_ARGUMENT, `path ${JSON.stringify(path)}: give it from the filesystem's root, starting with /`);
  let ino = ROOT_INO;
  for (const name of path.split('/').filter((p) => p !== '' && p !== '.')) {
    try {
      ino = (await meta.lookup(ino, name)).ino;
    } catch (err) {
      if (err instanceof TierfsError && err.code === StatusCode.NOT_FOUND) throw new TierfsError(StatusCode.NOT_FOUND, `${path}: no such file or directory in the filesystem`);
      throw err;
    }
  }
  return ino;
}
