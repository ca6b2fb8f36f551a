// Where a flushed block object goes. Writeback: staged in the disk cache (fsynced; uploaded
// later) or, when the disk cache is full or absent, put to S3. Without writeback close waits
// for S3 anyway, so the block goes straight to S3 and into the read cache afterwards (no
// fsynced local copy that is read back for the upload).
import type { Counter } from 'prom-client';
import type { Logger } from '../common/log.js';
import type { DiskCache } from '../diskcache/index.js';
import type { InodeState } from './inode-state.js';
import type { ObjectStore } from './object-store.js';
import type { PendingData } from './write-buffer.js';

export interface BlockWriterDeps {
  store: ObjectStore;
  disk: DiskCache | null;
  writeback: boolean;
  log: Logger;
  isClosed(): boolean;
  directPuts: Counter;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class BlockWriter {
  directPuts = 0;

  constructor(private readonly deps: BlockWriterDeps) {}

  async store(st: InodeState, entry: PendingData, key: string, body: Buffer): Promise<void> {
    const { store, disk, writeback, log } = this.deps;
    for (let attempt = 0; ; attempt++) {
      if (writeback && disk?.canStage(body.length) && (await disk.stage(key, body))) {
        const up = disk.uploaded(key);
        st.uploads.add(up);
        up.catch(() => {}).finally(() => st.uploads.delete(up));
        return;
      }
      try {
        await store.put(key, body);
        this.directPuts++;
        this.deps.directPuts.inc();
        if (disk && !writeback) {
          entry.holds.push(disk.put(key, body).catch((err: unknown) => log.debug({ key, err: String(err) }, 'could not cache a written block')));
        }
        return;
      } catch (err) {
        if (this.deps.isClosed()) throw err;
        // Keep the data in memory (writers wait on the budget) until S3 or the cache has room.
        log.warn({ key, attempt, err: String(err) }, 'block write failed, retrying');
        await sleep(Math.min(5_000, 100 * 2 ** Math.min(attempt, 6)));
      }
    }
  }
}
