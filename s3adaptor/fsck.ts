// `tierfs fsck`: checks a filesystem's data against its metadata. Every block object a file's
// slices name must exist in S3 with its size (a missing one is lost data, reported with the
// file's path); objects no inode names are leaked (a gateway that died between upload and
// commit, an interrupted compaction) and can be deleted. Objects younger than minAge are
// never called leaked: a writer may have uploaded them and not committed their slice yet.
// Objects read by reference (copy_file_range) count as referenced by every file that reads
// them, so fsck is also the GC of shared objects nothing reads any more (README.md).
import PQueue from 'p-queue';
import { StatusCode, TierfsError } from '../common/status.js';
import { parseBlockKey, sliceBlockKey } from './keys.js';
import { sliceObjects } from './layout.js';
import { listAll, type ObjectStore } from './object-store.js';
import type { Slice } from './types.js';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const ROOT_INO = 1;
const PAGE = 1000;
/** Findings listed one by one in the report; beyond that only counted. */
const MAX_LISTED = 1000;

/** What fsck needs of the metaserver (RemoteMetaClient fits). */
export interface FsckMeta {
  listDentries(parent: number, last: string, count: number): Promise<Array<{ name: string; ino: number; type: number }>>;
  getInode(ino: number): Promise<{ ino: number; mode: number }>;
  getSlices(ino: number): Promise<Map<number, Slice[]>>;
}

export interface FsckOptions {
  fsId: number;
  chunkSize: number;
  blockSize: number;
  store: ObjectStore;
  meta: FsckMeta;
  /** Unreferenced objects younger than this are left alone (default 1 h). */
  minAgeMs?: number;
  deleteLeaked?: boolean;
  /** Inodes checked at once. */
  concurrency?: number;
  now?: () => number;
  onProgress?: (what: 'objects' | 'files', count: number) => void;
}

export interface MissingObject {
  path: string;
  ino: number;
  key: string;
  expectedSize: number;
  /** null: no such object; else the size S3 has. */
  foundSize: number | null;
}

export interface FsckReport {
  objects: number;
  objectBytes: number;
  /** Objects in the bucket under the prefix that are not this filesystem's blocks. */
  foreignObjects: number;
  directories: number;
  files: number;
  /** Inodes that are in no directory but still exist (unlinked while open). */
  detachedFiles: number;
  referencedObjects: number;
  brokenFiles: number;
  missingObjects: number;
  missing: MissingObject[];
  leakedObjects: number;
  leakedBytes: number;
  leaked: string[];
  youngUnreferenced: number;
  deletedObjects: number;
}

const isNotFound = (err: unknown) => err instanceof TierfsError && err.code === StatusCode.NOT_FOUND;

export async function fsck(opts: FsckOptions): Promise<FsckReport> {
  const now = opts.now ?? Date.now;
  const minAgeMs = opts.minAgeMs ?? 3_600_000;
  const report: FsckReport = {
    objects: 0, objectBytes: 0, foreignObjects: 0, directories: 0, files: 0, detachedFiles: 0, referencedObjects: 0,
    brokenFiles: 0, missingObjects: 0, missing: [], leakedObjects: 0, leakedBytes: 0, leaked: [], youngUnreferenced: 0, deletedObjects: 0,
  };

  // 1. Every object of this filesystem, by key.
  const objects = new Map<string, { size: number; ino: number; modifiedMs: number | undefined }>();
  for await (const o of listAll(opts.store, '')) {
    const parts = parseBlockKey(o.key);
    if (!parts || parts.fsId !== opts.fsId) {
      report.foreignObjects++;
      continue;
    }
    objects.set(o.key, { size: o.size, ino: parts.ino, modifiedMs: o.lastModifiedMs });
    report.objects++;
    report.objectBytes += o.size;
    if (report.objects % PAGE === 0) opts.onProgress?.('objects', report.objects);
  }

  // 2. Every file reachable from the root: its slices' objects must be there. A slice copied
  //    by reference names another inode's objects: they count as referenced here too.
  // 3. Objects of inodes the walk did not reach: an inode that still exists (unlinked while
  //    open) keeps them; otherwise they are leaked once old enough.
  // `check` false: only collect the referenced keys (the confirmation walk), report nothing.
  const walk = async (check: boolean): Promise<Set<string>> => {
    const referenced = new Set<string>();
    const seen = new Set<number>();
    const checkFile = async (ino: number, path: string): Promise<void> => {
      let broken = false;
      for (const [chunkIndex, slices] of await opts.meta.getSlices(ino)) {
        for (const slice of slices) {
          for (const obj of sliceObjects(slice, opts.blockSize)) {
            const key = sliceBlockKey(opts.fsId, ino, chunkIndex, opts.chunkSize / opts.blockSize, slice, obj.blockIndex);
            if (referenced.has(key)) continue; // shared by copies: counted and checked once
            referenced.add(key);
            if (!check) continue;
            report.referencedObjects++;
            if (objects.get(key)?.size === obj.size) continue;
            // Not in the listing: ask again, it may have been written after the listing (a
            // compaction's new objects, whose slice swap this walk already sees).
            const now = await opts.store.head(key);
            if (now?.size === obj.size) continue;
            broken = true;
            report.missingObjects++;
            if (report.missing.length < MAX_LISTED) report.missing.push({ path, ino, key, expectedSize: obj.size, foundSize: now ? now.size : null });
          }
        }
      }
      if (broken && check) report.brokenFiles++;
    };
    const queue = new PQueue({ concurrency: opts.concurrency ?? 8 });
    const dirs: Array<{ ino: number; path: string }> = [{ ino: ROOT_INO, path: '/' }];
    seen.add(ROOT_INO);
    while (dirs.length > 0) {
      const dir = dirs.pop()!;
      if (check) report.directories++;
      for (let last = ''; ; ) {
        const page = await opts.meta.listDentries(dir.ino, last, PAGE);
        for (const d of page) {
          const path = dir.path === '/' ? `/${d.name}` : `${dir.path}/${d.name}`;
          if (seen.has(d.ino)) continue; // a hard link's other name
          seen.add(d.ino);
          const type = d.type & S_IFMT;
          if (type === S_IFDIR) dirs.push({ ino: d.ino, path });
          else if (type === S_IFREG) {
            void queue.add(() => checkFile(d.ino, path));
            if (check && ++report.files % PAGE === 0) opts.onProgress?.('files', report.files);
          }
        }
        if (page.length < PAGE) break;
        last = page[page.length - 1]!.name;
        await queue.onSizeLessThan(PAGE); // bounded memory on huge directories
      }
    }
    await queue.onIdle();

    const unreached = new Set<number>();
    for (const [key, o] of objects) if (!referenced.has(key) && !seen.has(o.ino)) unreached.add(o.ino);
    for (const ino of unreached) {
      try {
        const inode = await opts.meta.getInode(ino);
        if ((inode.mode & S_IFMT) === S_IFREG) {
          if (check) report.detachedFiles++;
          await checkFile(ino, `(inode ${ino}, in no directory)`);
        }
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    return referenced;
  };
  const referenced = await walk(true);

  const leaked: string[] = [];
  for (const [key, o] of objects) {
    if (referenced.has(key)) continue;
    if (o.modifiedMs === undefined || now() - o.modifiedMs < minAgeMs) {
      report.youngUnreferenced++;
      continue;
    }
    leaked.push(key);
    report.leakedObjects++;
    report.leakedBytes += o.size;
  }
  if (opts.deleteLeaked && leaked.length > 0) {
    // A copy by reference can give an old object a new reader while the walk runs (the copy
    // commits in a file already walked, its source drops the slice before the walk gets
    // there): walk again and spare whatever is referenced now.
    const again = await walk(false);
    const gone = leaked.filter((k) => !again.has(k));
    if (gone.length < leaked.length) {
      report.leakedObjects = gone.length;
      report.leakedBytes = gone.reduce((n, k) => n + objects.get(k)!.size, 0);
    }
    leaked.splice(0, leaked.length, ...gone);
    if (leaked.length > 0) await opts.store.deleteMany(leaked);
    report.deletedObjects = leaked.length;
  }
  report.leaked = leaked.slice(0, MAX_LISTED);
  return report;
}
