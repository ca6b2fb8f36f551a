// Recovery at open: blocks left in write/ by a previous run are staged again (their read/
// link restored: a crash may fall between the rename into write/ and the link), and the
// other files of read/ become the read cache, least recently accessed first.
import { link, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { scanDir, unlinkQuiet, type DirEntry } from './files.js';
import { isTemp } from './staging.js';

export interface Recovered {
  /** Oldest first (by mtime): the upload order. */
  staged: DirEntry[];
  /** Least recently accessed first. */
  cached: DirEntry[];
}

export async function recoverDirs(writeDir: string, readDir: string): Promise<Recovered> {
  await mkdir(writeDir, { recursive: true });
  await mkdir(readDir, { recursive: true });
  const staged = (await scanDir(writeDir, isTemp)).sort((a, b) => a.mtimeMs - b.mtimeMs);
  const stagedNames = new Set(staged.map((e) => e.name));
  const cached = (await scanDir(readDir, isTemp)).filter((e) => !stagedNames.has(e.name)).sort((a, b) => a.atimeMs - b.atimeMs);
  for (const e of staged) {
    await unlinkQuiet(join(readDir, e.name));
    await link(join(writeDir, e.name), join(readDir, e.name));
  }
  return { staged, cached };
}
