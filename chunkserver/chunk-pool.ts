// The chunk-file pool (Curve's FilePool): chunk files of a fixed size, zero-filled and
// fsynced ahead of need, so creating a chunk on the write path is one rename. Deleting a
// chunk renames it back into `dirty/`; the background refill zeroes dirty files (a new
// chunk must read as zeros) before they become `clean/` again, and makes new ones while
// the pool is below its target.
//
// Crash safety: a file becomes `clean/<n>.chunk` only by a rename after it was zero-filled
// and fsynced, so a clean file is always whole; a half-made `*.tmp` is removed at open; a
// dirty file is zeroed again. A take is one rename: after a crash the file is either still
// in the pool or already the chunk (the chunk file's existence is its record, see
// chunk-state.ts), never both and never lost.
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { open, rename, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../common/log.js';
import { silentLogger } from '../common/log.js';

export interface ChunkPoolOptions {
  chunkSize: number;
  /** Clean files the refill keeps ready. */
  target: number;
  logger?: Logger;
}

const ZEROS = Buffer.alloc(1 << 20);

async function zeroFill(path: string, size: number, flags: string): Promise<void> {
  const fh = await open(path, flags);
  try {
    for (let off = 0; off < size; off += ZEROS.length) await fh.write(ZEROS, 0, Math.min(ZEROS.length, size - off), off);
    await fh.truncate(size);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export class ChunkFilePool {
  private readonly clean: string[] = [];
  private readonly cleanDir: string;
  private readonly dirtyDir: string;
  private seq = 0;
  private refilling: Promise<void> | null = null;
  private closed = false;
  private readonly log: Logger;
  /** Files made or zeroed by the refill (for metrics and tests). */
  refilled = 0;

  constructor(
    readonly dir: string,
    private readonly opts: ChunkPoolOptions,
  ) {
    this.cleanDir = join(dir, 'clean');
    this.dirtyDir = join(dir, 'dirty');
    this.log = opts.logger ?? silentLogger;
  }

  get chunkSize(): number {
    return this.opts.chunkSize;
  }

  /** Clean files ready to be taken. */
  level(): number {
    return this.clean.length;
  }

  dirtyCount(): number {
    return readdirSync(this.dirtyDir).length;
  }

  /** Scans the pool (dropping half-made files) and starts the refill. */
  open(): this {
    mkdirSync(this.cleanDir, { recursive: true });
    mkdirSync(this.dirtyDir, { recursive: true });
    for (const name of readdirSync(this.cleanDir)) {
      const m = /^(\d+)\.chunk$/.exec(name);
      if (!m) {
        rmSync(join(this.cleanDir, name), { force: true }); // a refill interrupted before its rename
        continue;
      }
      this.clean.push(name);
      this.seq = Math.max(this.seq, Number(m[1]));
    }
    this.kick();
    return this;
  }

  /**
   * Moves a clean file to `dest` (the new chunk's path). When the pool is empty the file is
   * made on the spot: slower, never a failure.
   */
  async take(dest: string): Promise<void> {
    const name = this.clean.pop() ?? (await this.makeClean(false));
    await rename(join(this.cleanDir, name), dest);
    this.kick();
  }

  /** Returns a deleted chunk's file; it is zeroed before anyone takes it again. */
  async give(path: string): Promise<void> {
    await rename(path, join(this.dirtyDir, `${Date.now()}-${++this.seq}.chunk`));
    this.kick();
  }

  /** Starts the background refill unless it runs already. */
  kick(): void {
    if (this.refilling || this.closed) return;
    this.refilling = this.refill()
      .catch((err: unknown) => this.log.error({ err: String(err) }, 'chunk pool refill failed'))
      .finally(() => {
        this.refilling = null;
      });
  }

  /** Resolves when the refill has nothing left to do (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.refilling) await this.refilling;
  }

  private async refill(): Promise<void> {
    while (!this.closed) {
      const dirty = await readdir(this.dirtyDir);
      if (dirty.length > 0) {
        // Zero the file where it lies, then make it clean by a rename.
        const from = join(this.dirtyDir, dirty[0]!);
        await zeroFill(from, this.opts.chunkSize, 'r+');
        const name = `${++this.seq}.chunk`;
        await rename(from, join(this.cleanDir, name));
        this.clean.push(name);
        this.refilled++;
        continue;
      }
      if (this.clean.length >= this.opts.target) return;
      await this.makeClean(true);
      this.refilled++;
    }
  }

  /** Makes one zero-filled file as `<tmp>` and renames it clean; returns its name. */
  private async makeClean(list: boolean): Promise<string> {
    const name = `${++this.seq}.chunk`;
    const tmp = join(this.cleanDir, `${name}.tmp`);
    await zeroFill(tmp, this.opts.chunkSize, 'w');
    await rename(tmp, join(this.cleanDir, name));
    await syncDir(this.cleanDir);
    if (list) this.clean.push(name);
    return name;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.settled();
  }
}
