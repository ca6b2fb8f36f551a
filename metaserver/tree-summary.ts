// Counts what lies under a directory by walking the metaservers (listings and batched
// attribute reads, no FUSE): `tierfs summary`, quota set/check, and a mount moving a
// directory between quotas. Counts names, as quotas do: a hard link counts once per name.
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, type MetaClient } from './meta-client.js';

export interface TreeSummary {
  files: number;
  dirs: number;
  symlinks: number;
  /** Other names (devices, fifos, sockets). */
  others: number;
  /** Sum of regular files' sizes. */
  bytes: number;
}

export const emptySummary = (): TreeSummary => ({ files: 0, dirs: 0, symlinks: 0, others: 0, bytes: 0 });

/** Names under the directory (not counting itself): what a quota on it counts as inodes. */
export const namesIn = (s: TreeSummary): number => s.files + s.dirs + s.symlinks + s.others;

const PAGE = 1000;

/** Walks the tree below `dir`; `onDir` is told of each directory done (progress). */
export async function summarizeTree(meta: MetaClient, dir: number, onDir?: (s: TreeSummary) => void): Promise<TreeSummary> {
  const sum = emptySummary();
  const queue = [dir];
  while (queue.length > 0) {
    const d = queue.pop()!;
    let last = '';
    for (;;) {
      const page = await meta.listDentries(d, last, PAGE);
      const files: number[] = [];
      for (const e of page) {
        const type = e.type & S_IFMT;
        if (type === S_IFDIR) {
          sum.dirs++;
          queue.push(e.ino);
        } else if (type === S_IFREG) {
          sum.files++;
          files.push(e.ino);
        } else if (type === S_IFLNK) sum.symlinks++;
        else sum.others++;
      }
      if (files.length > 0) {
        const sizes = new Map((await meta.batchGetAttr([...new Set(files)])).map((a) => [a.ino, a.size]));
        for (const ino of files) sum.bytes += sizes.get(ino) ?? 0;
      }
      if (page.length < PAGE) break;
      last = page[page.length - 1]!.name;
    }
    onDir?.(sum);
  }
  return sum;
}
