// A writer for fault drills: one small file per step (create, write, fsync, close: metadata
// writes through Raft and data through the mount), each step's completion time recorded, so
// a drill can tell how long progress stopped and check afterwards that every acknowledged
// file is intact.
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export class WriteStream {
  /** Completion time (ms) of each acknowledged file, in order: file i is `${prefix}${i}`. */
  readonly done: number[] = [];
  private stopping = false;
  private readonly running: Promise<void>;

  constructor(
    private readonly dir: string,
    private readonly prefix: string,
  ) {
    this.running = this.run();
  }

  static content(i: number): string {
    return `entry ${i} ${'p'.repeat(200)}\n`;
  }

  private async run(): Promise<void> {
    for (let i = 0; !this.stopping; i++) {
      const fh = await open(join(this.dir, `${this.prefix}${i}`), 'w');
      await fh.write(WriteStream.content(i));
      await fh.sync();
      await fh.close();
      this.done.push(Date.now());
    }
  }

  /** Stops after the step in progress; rejects with the first error the writer saw. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
  }

  /** The longest time without an acknowledged file, counting from `since` (e.g. the fault). */
  longestStall(since: number): number {
    const after = this.done.filter((t) => t >= since);
    let longest = after.length > 0 ? after[0]! - since : Date.now() - since;
    for (let i = 1; i < this.done.length; i++) longest = Math.max(longest, this.done[i]! - this.done[i - 1]!);
    return longest;
  }

  acknowledgedSince(since: number): number {
    return this.done.filter((t) => t > since).length;
  }

  /** How many acknowledged files do not read back exactly as written. */
  async lost(): Promise<number> {
    let lost = 0;
    for (let i = 0; i < this.done.length; i++) {
      const got = await readFile(join(this.dir, `${this.prefix}${i}`), 'utf8').catch(() => '');
      if (got !== WriteStream.content(i)) lost++;
    }
    return lost;
  }
}
