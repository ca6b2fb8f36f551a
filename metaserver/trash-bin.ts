// The recycle bin (issue 16): a deleted file or directory is renamed into /.trash under a name
// that records when and from where — `{deletedAtMs}-{parentIno}-{ino}-{name}` — so the bin
// needs no records of its own and a restore is one rename back. Once expired, an entry is
// unlinked with releaseIno: the metaserver's own trash (the object-deletion queue) then
// deletes its objects. Used by the mount (gateway/vfs-trash.ts) and `tierfs trash`.
//
// Entries live in /.trash itself or in one of its shards, `/.trash/cs-{pool}-{copyset}`: a
// shard keeps its names in that copyset, so moving a name of that copyset into the bin is one
// Raft entry (apply-trash.ts) rather than a rename transaction between copysets (issue 12).
import { StatusCode, TierfsError } from '../common/status.js';
import { MAX_NAME_BYTES, ROOT_INO, S_IFDIR, S_IFMT, type MetaClient } from './meta-client.js';

export const TRASH_NAME = '.trash';
/** Holds the whole original name when it did not fit into the entry's name. */
export const TRASH_NAME_XATTR = 'user.tierfs.trash-name';
/** Shard names start with a letter; entry names with the deletion time's digits. */
const SHARD = /^cs-\d+-\d+$/;

/** The name of the shard of /.trash whose names live in copyset (pool, copyset). */
export function trashShardName(poolId: number, copysetId: number): string {
  return `cs-${poolId}-${copysetId}`;
}

export function isTrashShardName(name: string): boolean {
  return SHARD.test(name);
}

export interface TrashEntry {
  /** Its name in its bin directory. */
  entry: string;
  /** The directory holding the entry: /.trash or one of its shards. */
  dir: number;
  ino: number;
  type: number;
  deletedAtMs: number;
  /** The directory it was deleted from, and its name there. */
  parent: number;
  name: string;
}

/** The entry name; `truncated` when the original name had to be cut to fit. */
export function trashEntryName(deletedAtMs: number, parent: number, ino: number, name: string): { entry: string; truncated: boolean } {
  const prefix = `${deletedAtMs}-${parent}-${ino}-`;
  const full = prefix + name;
  if (Buffer.byteLength(full) <= MAX_NAME_BYTES) return { entry: full, truncated: false };
  let cut = name;
  while (Buffer.byteLength(prefix + cut) > MAX_NAME_BYTES) cut = cut.slice(0, -1);
  return { entry: prefix + cut, truncated: true };
}

export function parseTrashEntry(entry: string, ino: number, type: number, dir: number): TrashEntry | null {
  const m = /^(\d+)-(\d+)-(\d+)-(.+)$/s.exec(entry);
  if (!m) return null;
  return { entry, dir, ino, type, deletedAtMs: Number(m[1]), parent: Number(m[2]), name: m[4]! };
}

export async function trashDirIno(meta: MetaClient): Promise<number | null> {
  try {
    return (await meta.lookup(ROOT_INO, TRASH_NAME)).ino;
  } catch (err) {
    if (err instanceof TierfsError && err.code === StatusCode.NOT_FOUND) return null;
    throw err;
  }
}

/** /.trash, made (root's, 0700) when it does not exist yet; another mount making it at once is fine. */
export async function ensureTrashDir(meta: MetaClient): Promise<number> {
  const ino = await trashDirIno(meta);
  if (ino !== null) return ino;
  try {
    return (await meta.createNode(ROOT_INO, TRASH_NAME, { mode: S_IFDIR | 0o700, uid: 0, gid: 0, exclusive: true })).ino;
  } catch (err) {
    if (!(err instanceof TierfsError && err.code === StatusCode.EXISTS)) throw err;
    return (await meta.lookup(ROOT_INO, TRASH_NAME)).ino;
  }
}

async function listAll(meta: MetaClient, dir: number, each: (d: { name: string; ino: number; type: number }) => Promise<void>): Promise<void> {
  for (let last = ''; ; ) {
    const page = await meta.listDentries(dir, last, 1000);
    for (const d of page) await each(d);
    if (page.length < 1000) break;
    last = page[page.length - 1]!.name;
  }
}

/**
 * Every entry of the bin (in /.trash and its shards), oldest first, with the whole name of
 * those cut to fit; `bins` are /.trash and its shards.
 */
export async function listTrash(meta: MetaClient): Promise<{ trashIno: number | null; bins: Set<number>; entries: TrashEntry[] }> {
  const trashIno = await trashDirIno(meta);
  if (trashIno === null) return { trashIno, bins: new Set(), entries: [] };
  const bins = new Set([trashIno]);
  const entries: TrashEntry[] = [];
  const collect = (dir: number) => async (d: { name: string; ino: number; type: number }) => {
    const e = parseTrashEntry(d.name, d.ino, d.type, dir);
    if (!e) {
      if (dir === trashIno && (d.type & S_IFMT) === S_IFDIR && isTrashShardName(d.name)) {
        bins.add(d.ino);
        await listAll(meta, d.ino, collect(d.ino));
      }
      return;
    }
    if (Buffer.byteLength(d.name) >= MAX_NAME_BYTES - 4) {
      e.name = (await meta.getXattr(d.ino, TRASH_NAME_XATTR).then((b) => b.toString('utf8'), () => null)) ?? e.name;
    }
    entries.push(e);
  };
  await listAll(meta, trashIno, collect(trashIno));
  entries.sort((a, b) => a.deletedAtMs - b.deletedAtMs);
  return { trashIno, bins, entries };
}

/** Removes one entry for good: a file's objects go with the metaserver's deletion queue. */
export async function purgeTrashEntry(meta: MetaClient, e: TrashEntry): Promise<void> {
  if ((e.type & S_IFMT) === S_IFDIR) await meta.rmdir(e.dir, e.entry);
  else await meta.unlink(e.dir, e.entry, { releaseIno: e.ino });
}

/** Entries whose time in the bin is over. */
export function expired<T extends TrashEntry>(entries: T[], trashDays: number, nowMs: number): T[] {
  return entries.filter((e) => e.deletedAtMs + trashDays * 86_400_000 <= nowMs);
}

/**
 * The path of a directory, by walking its parents and finding its name in each (CLI
 * listings). A directory that is itself in the bin (one of `bins`) answers its original path.
 */
export async function pathOfDir(meta: MetaClient, dir: number, bins: ReadonlySet<number>, cache = new Map<number, string | null>()): Promise<string | null> {
  if (dir === ROOT_INO) return '/';
  if (cache.has(dir)) return cache.get(dir)!;
  let path: string | null = null;
  try {
    const parent = (await meta.getInode(dir)).parents[0];
    if (parent !== undefined) {
      for (let last = ''; ; ) {
        const page = await meta.listDentries(parent, last, 1000);
        const hit = page.find((d) => d.ino === dir);
        if (hit) {
          const trashed = bins.has(parent) ? parseTrashEntry(hit.name, hit.ino, hit.type, parent) : null;
          const above = await pathOfDir(meta, trashed ? trashed.parent : parent, bins, cache);
          const name = trashed ? trashed.name : hit.name;
          if (above !== null) path = above === '/' ? `/${name}` : `${above}/${name}`;
          break;
        }
        if (page.length < 1000) break;
        last = page[page.length - 1]!.name;
      }
    }
  } catch (err) {
    if (!(err instanceof TierfsError && err.code === StatusCode.NOT_FOUND)) throw err;
  }
  cache.set(dir, path);
  return path;
}
