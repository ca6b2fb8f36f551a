// Received snapshots staged as files (fsynced) until the state machine holds them, so a crash
// during the restore re-runs it at the next open.
import { createReadStream, mkdirSync } from 'node:fs';
import { open as openFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { SnapshotStaging } from './env.js';

export class FileSnapshotStaging implements SnapshotStaging {
  constructor(private readonly dir: string) {}

  private path(groupId: string): string {
    return join(this.dir, `${Buffer.from(groupId).toString('hex')}.snap`);
  }

  async write(groupId: string, chunks: Buffer[]): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const fh = await openFile(this.path(groupId), 'w');
    try {
      for (const c of chunks) await fh.write(c);
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  read(groupId: string): AsyncIterable<Buffer> {
    return createReadStream(this.path(groupId)) as AsyncIterable<Buffer>;
  }

  async remove(groupId: string): Promise<void> {
    await rm(this.path(groupId), { force: true });
  }
}
