// Open file handles of cached blocks, kept across reads: a read served from the disk cache is
// then one pread into the caller's buffer (one trip to the thread pool) instead of open, read,
// close. Handles are reference counted, so evicting or dropping one while a read uses it closes
// it only when that read is done. Cached blocks are immutable and unlinked, never rewritten,
// so an open handle never sees other bytes than the ones its key names.
import { open, type FileHandle } from 'node:fs/promises';
import { LRUCache } from 'lru-cache';

interface PooledHandle {
  handle: Promise<FileHandle>;
  users: number;
  retired: boolean;
}

export class FdPool {
  private readonly handles: LRUCache<string, PooledHandle>;

  constructor(maxOpen: number) {
    this.handles = new LRUCache<string, PooledHandle>({
      max: Math.max(1, maxOpen),
      dispose: (entry) => this.retire(entry),
    });
  }

  /** Runs `fn` with an open read handle of the file `pathOf(key)`, cached under `key`. */
  async use<T>(key: string, pathOf: (key: string) => string, fn: (fh: FileHandle) => Promise<T>): Promise<T> {
    let entry = this.handles.get(key);
    if (!entry) {
      entry = { handle: open(pathOf(key), 'r'), users: 0, retired: false };
      this.handles.set(key, entry);
    }
    entry.users++;
    try {
      const fh = await entry.handle;
      return await fn(fh);
    } catch (err) {
      // A failed open (the file was removed) must not stay cached.
      if (this.handles.peek(key) === entry) this.handles.delete(key);
      throw err;
    } finally {
      entry.users--;
      if (entry.retired && entry.users === 0) this.close(entry);
    }
  }

  /** Forgets a key (its file is being removed); the handle closes once no read uses it. */
  drop(key: string): void {
    this.handles.delete(key);
  }

  get size(): number {
    return this.handles.size;
  }

  /** Closes every handle not in use now; ones in use close when their reads end. */
  clear(): void {
    this.handles.clear();
  }

  private retire(entry: PooledHandle): void {
    entry.retired = true;
    if (entry.users === 0) this.close(entry);
  }

  private close(entry: PooledHandle): void {
    entry.handle.then((fh) => fh.close()).catch(() => {});
  }
}
