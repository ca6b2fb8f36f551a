// The NBD server with libnbd's own tools (Debian libnbd-bin: nbdinfo, nbdcopy) as the
// client: the fixed newstyle handshake, size, writes, reads, flush, trim and disconnect.
// The device here is in memory; the same server serves a VolumeClient (`tierfs volume nbd`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startNbdServer, type BlockDevice } from '../../blockclient/nbd-server.js';
import { tempDir } from '../support/tmp.js';

class MemDevice implements BlockDevice {
  readonly data: Buffer;
  flushes = 0;
  constructor(readonly size: number) {
    this.data = Buffer.alloc(size);
  }
  async read(offset: number, target: Buffer): Promise<void> {
    this.data.copy(target, 0, offset, offset + target.length);
  }
  async write(offset: number, data: Buffer): Promise<void> {
    data.copy(this.data, offset);
  }
  async trim(offset: number, length: number): Promise<void> {
    this.data.fill(0, offset, offset + length);
  }
  async flush(): Promise<void> {
    this.flushes++;
  }
}

// Asynchronous: the server runs in this process.
const tool = async (cmd: string, args: string[]) => (await promisify(execFile)(cmd, args, { encoding: 'utf8', timeout: 60_000 })).stdout;

test('nbdinfo and nbdcopy talk to the NBD server: size, write, read back, flush, trim', { timeout: 120_000 }, async () => {
  const tmp = tempDir('tierfs-nbd-');
  const dev = new MemDevice(8 << 20);
  const sock = join(tmp.path, 'nbd.sock');
  const server = await startNbdServer(sock, dev, 'vol');
  const uri = `nbd+unix:///vol?socket=${sock}`;
  try {
    const info = JSON.parse(await tool('nbdinfo', ['--json', uri])) as { exports: Array<{ 'export-size': number; can_flush: boolean; can_trim: boolean }> };
    assert.equal(info.exports[0]!['export-size'], 8 << 20);
    assert.ok(info.exports[0]!.can_flush && info.exports[0]!.can_trim);

    const img = randomBytes(8 << 20);
    writeFileSync(join(tmp.path, 'in.img'), img);
    await tool('nbdcopy', ['--flush', join(tmp.path, 'in.img'), uri]);
    assert.ok(dev.data.equals(img), 'the device holds what nbdcopy wrote');
    assert.ok(server.counters.write > 0 && dev.flushes > 0);

    await tool('nbdcopy', [uri, join(tmp.path, 'out.img')]);
    assert.ok(readFileSync(join(tmp.path, 'out.img')).equals(img), 'nbdcopy reads the same bytes back');

    // An all-zero source: nbdcopy trims or writes zeroes where it can.
    writeFileSync(join(tmp.path, 'zero.img'), Buffer.alloc(8 << 20));
    await tool('nbdcopy', [join(tmp.path, 'zero.img'), uri]);
    assert.ok(dev.data.equals(Buffer.alloc(8 << 20)), 'zeroed');
    assert.ok(server.counters.trim + server.counters.zeroes + server.counters.write > 0);
  } finally {
    await server.close();
    tmp.remove();
  }
});
