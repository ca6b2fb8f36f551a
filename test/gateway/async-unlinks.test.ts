// --async-unlink without a kernel: the VFS on the in-memory metaserver behind the wrapper the
// mount puts in front of it. The metaserver's unlink is held at a gate, so each test sees
// exactly what was answered before the write and what waited for it.
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { test } from 'node:test';
import { AsyncUnlinks } from '../../gateway/async-unlinks.js';
import { errnoOf } from '../../gateway/errors.js';
import { internalContext, Vfs } from '../../gateway/vfs.js';
import { ROOT_INO, S_IFDIR, S_IFREG } from '../../metaserver/meta-client.js';
import { StatusCode, TierfsError } from '../../common/status.js';
import { MemoryFileData } from './support/memory-file-data.js';
import { MemoryMetaClient } from './support/memory-meta.js';

const E = constants.errno;
const O_WRONLY = 1;
const O_CREAT = 0o100;
const O_EXCL = 0o200;
const ctx = internalContext(0, 0);

/** The in-memory metaserver whose unlinks wait until `open()`; `calls` counts those started. */
class GatedMeta extends MemoryMetaClient {
  private gate: Promise<void> = Promise.resolve();
  private release: () => void = () => {};
  started = 0;
  failWith: TierfsError | null = null;
  hold(): void {
    this.gate = new Promise((r) => (this.release = r));
  }
  letGo(): void {
    this.release();
  }
  override async unlink(...args: Parameters<MemoryMetaClient['unlink']>): ReturnType<MemoryMetaClient['unlink']> {
    this.started++;
    await this.gate;
    if (this.failWith) throw this.failWith;
    return super.unlink(...args);
  }
}

async function setup(opts: { maxPending?: number } = {}) {
  const meta = new GatedMeta();
  const vfs = new Vfs(meta, new MemoryFileData(), { attrTimeoutMs: 30_000, entryTimeoutMs: 30_000 });
  const unlinks = new AsyncUnlinks(vfs, opts);
  const fs = unlinks.wrap(vfs);
  const dir = (await meta.createNode(ROOT_INO, 'd', { mode: S_IFDIR | 0o755, uid: 0, gid: 0, exclusive: true })).ino;
  const file = async (name: string) => meta.createNode(dir, name, { mode: S_IFREG | 0o644, uid: 0, gid: 0, exclusive: true });
  return { meta, vfs, unlinks, fs, dir, file };
}

const names = async (meta: MemoryMetaClient, dir: number) => (await meta.listDentries(dir, '', 1000)).map((d) => d.name).sort();

test('an unlink is answered before the metaserver writes it; queued ones go out together in the next wave', async () => {
  const { meta, fs, unlinks, dir, file } = await setup();
  for (const n of ['a', 'b', 'c', 'd']) await file(n);
  meta.hold();
  await fs.unlink!(ctx, dir, 'a');
  assert.equal(unlinks.counts.pending, 1, 'answered, not written');
  assert.deepEqual(await names(meta, dir), ['a', 'b', 'c', 'd']);
  await fs.unlink!(ctx, dir, 'b');
  await fs.unlink!(ctx, dir, 'c');
  await new Promise((r) => setImmediate(r));
  assert.equal(meta.started, 1, 'b and c wait for the wave in flight');
  meta.letGo();
  await unlinks.drain();
  assert.deepEqual(await names(meta, dir), ['d']);
  assert.equal(unlinks.counts.waves, 2);
  assert.deepEqual({ ...unlinks.counts, waves: 0 }, { pending: 0, answered: 3, committed: 3, failed: 0, waves: 0 });
});

test('a lookup, create or listing that would see a pending unlink waits for it', async () => {
  const { meta, fs, unlinks, dir, file } = await setup();
  await file('x');
  await file('y');
  meta.hold();
  await fs.unlink!(ctx, dir, 'x');
  await fs.unlink!(ctx, dir, 'y');
  let looked = false;
  const lookup = fs.lookup!(ctx, dir, 'x').then(
    () => ((looked = true), 0),
    (err: unknown) => ((looked = true), errnoOf(err)),
  );
  const created = fs.create!(ctx, dir, 'x', 0o644, O_CREAT | O_EXCL | O_WRONLY, 0);
  const listing = fs.opendir!(ctx, dir, 0).then((h) => fs.readdir!(ctx, dir, h.fh, 0, false));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(looked, false, 'the lookup waits');
  meta.letGo();
  assert.equal(await lookup, E.ENOENT, 'then finds the name gone');
  const out = await created;
  assert.ok('attr' in out.entry, 'the create of the same name ran after the unlink (no EEXIST)');
  assert.ok(!(await listing).some((e) => e.name === 'y'), 'the listing ran after the unlinks');
  assert.equal(unlinks.counts.pending, 0);
});

test('rmdir waits for the unlinks inside, so it finds the directory empty', async () => {
  const { meta, fs, dir, file } = await setup();
  for (let i = 0; i < 20; i++) await file(`f${i}`);
  meta.hold();
  for (let i = 0; i < 20; i++) await fs.unlink!(ctx, dir, `f${i}`);
  const rmdir = fs.rmdir!(ctx, ROOT_INO, 'd');
  meta.letGo();
  await rmdir;
  assert.deepEqual(await names(meta, ROOT_INO), []);
});

test('at most maxPending unlinks are answered ahead; a failed write is counted and its name stays', async () => {
  const { meta, fs, unlinks, dir, file } = await setup({ maxPending: 2 });
  for (const n of ['a', 'b', 'c']) await file(n);
  meta.hold();
  meta.failWith = new TierfsError(StatusCode.UNAVAILABLE, 'no metaserver answered');
  await fs.unlink!(ctx, dir, 'a');
  await fs.unlink!(ctx, dir, 'b');
  let third = false;
  const c = fs.unlink!(ctx, dir, 'c').then(() => (third = true));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(third, false, 'the third waits for room');
  meta.letGo();
  await c;
  await unlinks.drain();
  assert.equal(unlinks.counts.failed, 3);
  assert.deepEqual(await names(meta, dir), ['a', 'b', 'c']);
  assert.equal(errnoOf(await fs.rmdir!(ctx, ROOT_INO, 'd').catch((e: unknown) => e)), E.ENOTEMPTY);
});
