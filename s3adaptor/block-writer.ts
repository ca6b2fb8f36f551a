// Where a flushed block object goes, and how long S3 may take.
//
// Writeback: staged in the disk cache (fsynced; uploaded later) or, when the disk cache is
// full or absent, put to S3. Without writeback, close waits for S3, so the block goes
// straight to S3 and into the read cache afterwards (no fsynced local copy read back for the
// upload).
//
// Either way a flush gets `s3TimeoutMs` in all (its deadline is set when it starts). A put S3
// has not taken by then — S3 down, stalled, or too slow — is staged on the local disk instead
// (durable there; the uploader puts it when S3 answers again, and `cache stats` shows it
// staged); when the disk cannot take it either the flush fails with UNAVAILABLE (EIO). After
// a put timed out, the next blocks skip S3 for a short while and are staged at once, so an
// outage costs one timeout per flush, not one per block.
import type { Counter } from 'prom-client';
import type { Logger } from '../common/log.js';
import { StatusCode, TierfsError } from '../common/status.js';
import type { DiskCache } from '../diskcache/index.js';
import type { BlockCache } from './block-cache.js';
import type { InodeState } from './inode-state.js';
import type { ObjectStore } from './object-store.js';

export interface BlockWriterDeps {
  store: ObjectStore;
  disk: DiskCache | null;
  writeback: boolean;
  /** A flush's time budget for S3 (close and fsync return within about this). */
  s3TimeoutMs: number;
  /** --cache-group-write: a block put to S3 is handed (a copy) to the cache group too. */
  groupWrite: BlockCache | null;
  log: Logger;
  isClosed(): boolean;
  directPuts: Counter;
  outageStaged: Counter;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** After a put ran out of time, S3 is skipped (blocks staged at once) for this long. */
const S3_DOWN_HOLD_MS = 2_000;

export class BlockWriter {
  directPuts = 0;
  /** Blocks staged because S3 did not take them in time (uploaded when it answers again). */
  outageStaged = 0;
  private s3DownUntil = 0;

  constructor(private readonly deps: BlockWriterDeps) {}

  /** The deadline of a flush starting now. */
  deadline(): number {
    return Date.now() + this.deps.s3TimeoutMs;
  }

  /** Time kept back from S3 for staging a block that S3 did not take (and committing the slices). */
  private get reserveMs(): number {
    return Math.min(5_000, this.deps.s3TimeoutMs / 4);
  }

  /** `holds`: where the read-cache copy of a block put straight to S3 is tracked (a flush's entry waits for it). */
  async store(st: InodeState, holds: Array<Promise<unknown>>, key: string, body: Buffer, deadline: number): Promise<void> {
    const { store, disk, writeback, log } = this.deps;
    if (writeback && disk?.canStage(body.length) && (await disk.stage(key, body))) {
      const up = disk.uploaded(key);
      st.uploads.add(up);
      up.catch(() => {}).finally(() => st.uploads.delete(up));
      return;
    }
    const putUntil = deadline - this.reserveMs;
    let lastErr: unknown = null;
    for (let attempt = 0; Date.now() < this.s3DownUntil ? false : Date.now() < putUntil; attempt++) {
      try {
        await store.put(key, body, { deadlineMs: putUntil - Date.now() });
        this.s3DownUntil = 0;
        this.directPuts++;
        this.deps.directPuts.inc();
        if (disk && !writeback) {
          holds.push(disk.put(key, body).catch((err: unknown) => log.debug({ key, err: String(err) }, 'could not cache a written block')));
        }
        if (this.deps.groupWrite) void this.deps.groupWrite.admit(key, Buffer.from(body)); // the page is reused after the flush
        return;
      } catch (err) {
        if (this.deps.isClosed()) throw err;
        lastErr = err;
        log.warn({ key, attempt, err: String(err) }, 'block write to S3 failed');
        if (Date.now() >= putUntil - 1) this.s3DownUntil = Date.now() + S3_DOWN_HOLD_MS;
        else await sleep(Math.min(putUntil - Date.now(), 100 * 2 ** Math.min(attempt, 6)));
      }
    }
    // S3 did not take the block in time: keep it on the local disk, uploaded when S3 is back.
    if (disk && (await disk.stage(key, body))) {
      this.outageStaged++;
      this.deps.outageStaged.inc();
      log.warn({ key }, 'S3 did not take a block in time: staged on the local disk, uploaded when S3 answers');
      return;
    }
    const why = lastErr ? String(lastErr) : 'S3 is not answering';
    throw new TierfsError(
      StatusCode.UNAVAILABLE,
      `block ${key} could not be stored within ${this.deps.s3TimeoutMs} ms: ${why}; ${disk ? 'the disk cache is full' : 'no disk cache to stage it on'}`,
    );
  }
}
