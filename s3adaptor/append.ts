// O_APPEND across mounts, the data path's part: a run of appended bytes is stored as the
// objects of one slice extent that belongs to no chunk yet (chunk 0 under a fresh chunk id),
// then one SliceStore call has the metaserver place it at the end of the file as it finds it
// when the Raft entry applies (append-layout.ts). Nothing is written at a guessed offset, so
// appends from any number of mounts never overwrite one another, and the run lands whole.
import type { Logger } from '../common/log.js';
import { StatusCode, TierfsError } from '../common/status.js';
import { appendPieces } from './append-layout.js';
import type { InodeState } from './inode-state.js';
import { sliceBlockKey } from './keys.js';
import { sliceObjects } from './layout.js';
import { runLimited } from './run-limited.js';
import type { AppendPlaced, AppendRunRequest, Slice, SliceStore } from './types.js';

export interface AppendTimes {
  mtimeMs: number;
  ctimeMs: number;
}

export interface AppendDeps {
  fsId: number;
  chunkSize: number;
  blockSize: number;
  sliceStore: SliceStore;
  blockWriteConcurrency: number;
  logger: Logger;
  /** One chunk id above every id in the inode's slices as cached (fetched when not). */
  reserveId(st: InodeState): Promise<number>;
  /** Stores one block object as a flush would (staged with writeback, else put to S3). */
  storeBlock(st: InodeState, key: string, body: Buffer): Promise<void>;
  /** After the placement: the chunks that got slices may want compaction. */
  committed(st: InodeState, chunks: number[]): void;
}

/** Tries with a newer id when the placement met a newer slice past the end (a truncate's, another mount's). */
const MAX_ID_RETRIES = 8;

export class AppendWriter {
  readonly counts = { runs: 0, bytes: 0, idRetries: 0 };

  constructor(private readonly deps: AppendDeps) {}

  /**
   * Stores `data` and has it placed at the end of the file; resolves with where it landed
   * (and whatever else the store returned: the metaserver's inode after). `guess`: where the
   * caller believes the end is; only the objects' block grid follows it (a right guess lets
   * a run cut by a chunk boundary own its objects outright, append-layout.ts).
   * The run must fit in one chunk.
   */
  async append(st: InodeState, data: Buffer, times: AppendTimes, guess: number): Promise<AppendPlaced> {
    const { chunkSize: cs, blockSize: bs, sliceStore } = this.deps;
    if (!sliceStore.appendRun) throw new TierfsError(StatusCode.NOT_SUPPORTED, 'the slice store cannot place O_APPEND runs');
    if (data.length === 0 || data.length > cs) throw new TierfsError(StatusCode.INVALID_ARGUMENT, `append run of ${data.length} bytes (1 to ${cs})`);
    const ownerChunkId = await this.deps.reserveId(st);
    const ownerOffset = ((guess % bs) + bs) % bs;
    const owner: Slice = { chunkId: ownerChunkId, compaction: 0, offset: ownerOffset, len: data.length, size: data.length, zero: false };
    const bpc = cs / bs;
    const writes = sliceObjects(owner, bs).map((obj) => () =>
      this.deps.storeBlock(st, sliceBlockKey(this.deps.fsId, st.ino, 0, bpc, owner, obj.blockIndex), data.subarray(obj.chunkStart - ownerOffset, obj.chunkStart - ownerOffset + obj.size)),
    );
    await runLimited(writes, this.deps.blockWriteConcurrency);
    const run: AppendRunRequest = { chunkId: ownerChunkId, len: data.length, ownerChunkId, ownerOffset, chunkSize: cs, blockSize: bs, ...times };
    for (let attempt = 0; ; attempt++) {
      let placed: AppendPlaced;
      try {
        placed = await sliceStore.appendRun(st.ino, run);
      } catch (err) {
        if (err instanceof TierfsError && err.code === StatusCode.TX_CONFLICT && attempt < MAX_ID_RETRIES) {
          // A slice past the end is newer than our id: order the run above it (the objects stay).
          this.counts.idRetries++;
          st.invalidate();
          run.chunkId = await this.deps.reserveId(st);
          continue;
        }
        if (err instanceof TierfsError && (err.code === StatusCode.TX_CONFLICT || err.code === StatusCode.NOT_SUPPORTED || err.code === StatusCode.INVALID_ARGUMENT)) throw err;
        // The outcome is unknown (the call timed out after its retries): the run may have
        // been placed. Look for it before anyone sends it again.
        const found = await this.findPlaced(st.ino, ownerChunkId).catch(() => null);
        if (found === null) throw err;
        this.deps.logger.warn({ ino: st.ino, base: found, err: String(err) }, 'an append whose commit failed had been placed');
        placed = { base: found };
      }
      const pieces = appendPieces(st.ino, placed.base, run);
      st.addCommitted(pieces);
      this.counts.runs++;
      this.counts.bytes += data.length;
      this.deps.committed(st, [...pieces.keys()]);
      return placed;
    }
  }

  /** Where a run (named by its objects' chunk id) was placed, or null when it is not in the file. */
  private async findPlaced(ino: number, ownerChunkId: number): Promise<number | null> {
    for (const [idx, list] of await this.deps.sliceStore.getSlices(ino)) {
      for (const s of list) {
        if (s.refOwned && s.ref?.ino === ino && s.ref.chunkId === ownerChunkId && s.ref.pos === s.ref.offset) return idx * this.deps.chunkSize + s.offset;
      }
    }
    return null;
  }
}
