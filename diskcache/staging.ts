// Staging: blocks written durably to write/ before they are in S3 (writeback). A block is
// written to a temp file (fsynced), renamed into write/ and hard-linked into read/ at once,
// so readers find it like any cached block; the uploader removes the write/ link once the
// object is in S3. The map keeps insertion order: oldest first.
import { link, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDir, unlinkQuiet, writeFileSynced } from './files.js';
import { invariant } from './limits.js';

export const TEMP_PREFIX = '.tmp-';
export const isTemp = (name: string) => name.startsWith(TEMP_PREFIX);

export interface StagedBlock {
  size: number;
  stagedAt: number;
  done: Promise<void>;
  resolve(): void;
  reject(err: Error): void;
  cancelled: boolean;
  /** The upload attempt in progress, so remove() can wait for it and then delete the object. */
  running: Promise<unknown> | null;
}

export class Staging {
  private readonly blocks = new Map<string, StagedBlock>(); // insertion order = oldest first
  /** Sum of the staged blocks' sizes (kept, not summed: stats and usage read it often). */
  private stagedBytes = 0;
  private pendingDirSync: Promise<void> | null = null;
  private dirSyncChain: Promise<void> = Promise.resolve();
  private tempSeq = 0;

  constructor(
    readonly writeDir: string,
    private readonly readDir: string,
    private readonly fsync: () => boolean,
  ) {}

  get bytes(): number {
    return this.stagedBytes;
  }

  get count(): number {
    return this.blocks.size;
  }

  size(key: string): number | undefined {
    return this.blocks.get(key)?.size;
  }

  has(key: string): boolean {
    return this.blocks.has(key);
  }

  get(key: string): StagedBlock | undefined {
    return this.blocks.get(key);
  }

  oldest(): StagedBlock | undefined {
    return this.blocks.values().next().value;
  }

  values(): IterableIterator<StagedBlock> {
    return this.blocks.values();
  }

  /** Resolves once the block is in S3 (at once for a key that is not staged). */
  uploaded(key: string): Promise<void> {
    return this.blocks.get(key)?.done ?? Promise.resolve();
  }

  /**
   * Writes the block's files: temp (fsynced) -> write/key -> link read/key. On a local disk
   * failure nothing of the block stays and the error is rethrown for the caller to judge.
   * `beforeLink` runs between the rename and the link (the read cache forgets the key).
   */
  async writeFiles(key: string, data: Buffer, beforeLink: () => void): Promise<void> {
    const tmp = join(this.writeDir, `${TEMP_PREFIX}${process.pid}-${this.tempSeq++}`);
    try {
      await writeFileSynced(tmp, data, this.fsync());
      await rename(tmp, join(this.writeDir, key));
      beforeLink(); // a re-staged key replaces what read/ held
      await unlinkQuiet(join(this.readDir, key));
      await link(join(this.writeDir, key), join(this.readDir, key));
    } catch (err) {
      await unlinkQuiet(tmp).catch(() => {});
      await unlinkQuiet(join(this.writeDir, key)).catch(() => {});
      throw err;
    }
  }

  /** Registers a block whose files are in place; the caller queues its upload. */
  add(key: string, size: number, stagedAt: number): StagedBlock {
    invariant(!this.blocks.has(key), () => `staged block ${key} registered twice`);
    let resolve!: () => void;
    let reject!: (err: Error) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    done.catch(() => {}); // waiting is optional; a rejection at close must not crash the process
    const block: StagedBlock = { size, stagedAt, done, resolve, reject, cancelled: false, running: null };
    this.blocks.set(key, block);
    this.stagedBytes += size;
    return block;
  }

  /** Unregisters a block (uploaded, or removed); its files are the caller's. */
  take(key: string): StagedBlock | undefined {
    const block = this.blocks.get(key);
    if (!block) return undefined;
    this.blocks.delete(key);
    this.stagedBytes -= block.size;
    invariant(this.stagedBytes >= 0 && (this.blocks.size > 0 || this.stagedBytes === 0), () => `staged bytes ${this.stagedBytes} with ${this.blocks.size} blocks`);
    return block;
  }

  /** Group commit: callers whose rename happened before a sync started share that sync. */
  syncWriteDir(): Promise<void> {
    if (this.pendingDirSync) return this.pendingDirSync;
    const p = this.dirSyncChain.then(() => {
      this.pendingDirSync = null;
      return fsyncDir(this.writeDir);
    });
    this.pendingDirSync = p;
    this.dirSyncChain = p.catch(() => {});
    return p;
  }
}
