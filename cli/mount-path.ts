// A local path inside a tierfs mount -> the mount that serves it (from the mount registry)
// and the path inside its filesystem, for commands that read metadata straight from the
// metaservers (info, summary) and the mount's disk cache directory.
import { realpathSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { StatusCode, TierfsError } from '../common/status.js';
import { canonicalMountpoint, readMountRecord, type MountRecord } from '../gateway/mount-registry.js';

export interface MountedPath {
  mount: MountRecord;
  /** The path inside the filesystem, from its root ("/a/b"). */
  fsPath: string;
}

export function locateOnMount(path: string): MountedPath {
  let real: string;
  try {
    real = realpathSync(resolve(path));
  } catch {
    throw new TierfsError(StatusCode.NOT_FOUND, `${path}: no such file or directory`);
  }
  for (let dir = real; ; dir = dirname(dir)) {
    const rec = readMountRecord(canonicalMountpoint(dir));
    if (rec) {
      const rel = relative(dir, real);
      return { mount: rec, fsPath: `/${rel}` };
    }
    if (dirname(dir) === dir) break;
  }
  throw new TierfsError(StatusCode.NOT_FOUND, `${path} is not on a tierfs mount of this machine (or use --fs NAME --path /dir)`);
}
