// RecordStore: an apply's batch is visible at once and written to level behind the earlier
// ones (the apply answers without waiting for level); range scans wait until level has it;
// a failed level write fails every later call, so the state machine stops.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { join } from 'node:path';
import { Level } from 'level';
import { CopysetKeys, rangeEnd } from '../../metaserver/keys.js';
import type { MetaDb } from '../../metaserver/overlay.js';
import { RecordStore } from '../../metaserver/record-store.js';
import { tempDir } from '../support/tmp.js';

/** level, with its batch writes held until `release` (or failed). */
function heldWrites(level: Level<string, string>): { db: MetaDb; release: () => void; fail: () => void } {
  let open!: (ok: boolean) => void;
  const gate = new Promise<boolean>((r) => (open = r));
  const db = new Proxy(level, {
    get(target, prop) {
      if (prop === 'batch') {
        return async (...args: Parameters<typeof level.batch>) => {
          if (!(await gate)) throw new Error('disk failed');
          return (target.batch as (...a: unknown[]) => Promise<void>)(...args);
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as unknown as MetaDb;
  return { db, release: () => open(true), fail: () => open(false) };
}

async function withLevel(fn: (level: Level<string, string>, keys: CopysetKeys) => Promise<void>): Promise<void> {
  const tmp = tempDir('tierfs-records-');
  const level = new Level<string, string>(join(tmp.path, 'db'));
  await level.open();
  try {
    await fn(level, new CopysetKeys(1, 7));
  } finally {
    await level.close();
    tmp.remove();
  }
}

test('a batch is read back before level has it; a range scan waits for the write', async () => {
  await withLevel(async (level, keys) => {
    const { db, release } = heldWrites(level);
    const store = new RecordStore(db, keys);
    const a = keys.dentry(1, 1, 'a');
    const b = keys.dentry(1, 1, 'b');
    await store.batch([{ type: 'put', key: a, value: '1' }]);
    await store.batch([{ type: 'put', key: b, value: '2' }, { type: 'del', key: a }]);
    assert.equal(await store.get(a), undefined, 'the newest batch wins');
    assert.equal(await store.get(b), '2');
    assert.equal(await level.get(b), undefined, 'not in level yet');
    const prefix = keys.dentryPrefix(1, 1);
    let listed: string[] | null = null;
    const scan = (async () => {
      const out: string[] = [];
      for await (const k of store.keys({ gte: prefix, lt: rangeEnd(prefix), limit: -1 })) out.push(k);
      listed = out;
    })();
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(listed, null, 'the scan waits for the held writes');
    release();
    await scan;
    assert.deepEqual(listed, [b]);
    assert.equal(await level.get(b), '2');
    assert.equal(await level.get(a), undefined);
  });
});

test('a failed level write fails the calls after it', async () => {
  await withLevel(async (level, keys) => {
    const { db, fail } = heldWrites(level);
    const store = new RecordStore(db, keys);
    await store.batch([{ type: 'put', key: keys.inode(1, 5), value: '{}' }]);
    fail();
    await assert.rejects(store.settled(), /metadata write to level failed: disk failed/);
    await assert.rejects(store.get(keys.inode(1, 6)), /write to level failed/);
    await assert.rejects(store.batch([{ type: 'put', key: keys.inode(1, 6), value: '{}' }]), /write to level failed/);
  });
});

test('warm: the keys of every write proposed in one run are read in one getMany; a prefetch waits for a read in flight instead of reading again', async () => {
  await withLevel(async (level, keys) => {
    const names = Array.from({ length: 64 }, (_, i) => keys.dentry(1, 1, `f${i}`));
    await level.put(names[3]!, '{"ino":9}');
    let getMany = 0;
    const db = new Proxy(level, {
      get(target, prop) {
        if (prop === 'getMany') return (ks: string[]) => (getMany++, target.getMany(ks));
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as unknown as MetaDb;
    const store = new RecordStore(db, keys);
    for (const name of names) store.warm([name, keys.inode(1, 1)]);
    assert.equal(getMany, 0, 'nothing read before the run ends');
    await Promise.resolve();
    assert.equal(getMany, 1);
    // The apply's own prefetch of the same keys, while the warm read is still in flight.
    await store.prefetch(names);
    assert.equal(getMany, 1);
    assert.equal(store.cached(names[3]!), '{"ino":9}');
    assert.equal(store.cached(names[4]!), null, 'known absent');
  });
});
