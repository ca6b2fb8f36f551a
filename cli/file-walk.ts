// Regular files under paths (directories walked depth first), with their sizes: what
// `tierfs cache warmup|evict PATH...` works through. Symlinks are not followed.
import { lstat, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';

export interface WalkedFile {
  path: string;
  size: number;
}

export async function regularFilesUnder(paths: string[]): Promise<WalkedFile[]> {
  const out: WalkedFile[] = [];
  const visit = async (path: string): Promise<void> => {
    const st = await lstat(path);
    if (st.isFile()) {
      out.push({ path, size: st.size });
    } else if (st.isDirectory()) {
      for (const entry of (await readdir(path)).sort()) await visit(join(path, entry));
    }
  };
  for (const p of paths) await visit(resolve(p));
  return out;
}
