import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RaftLogStore } from '../../raft/runtime/log-store.js';
import { type Entry, EntryType } from '../../raft/core/types.js';
import { tempDir } from '../support/tmp.js';

const ents = (from: number, to: number, term: number): Entry[] =>
  Array.from({ length: to - from + 1 }, (_, i) => ({ index: from + i, term, type: EntryType.Normal, data: Buffer.from(`${from + i}@${term}`) }));

const conf = { voters: ['a', 'b', 'c'], learners: [], epoch: 0 };

test('log store: runs reload in order, later runs truncate, compaction drops covered runs, groups stay apart', async () => {
  const dir = tempDir('raft-store-');
  try {
    let store = await RaftLogStore.open(dir.path);
    await store.createGroup('g', { index: 1, term: 1, conf }, { term: 1, vote: '', commit: 1 });
    await store.createGroup('h', { index: 1, term: 1, conf }, { term: 1, vote: '', commit: 1 });
    const w = (groupId: string, entries: Entry[], commit: number) =>
      store.write([{ groupId, entries, hardState: { term: 3, vote: 'a', commit }, hardStateMustSync: true, snapshot: null }]);
    await w('g', ents(2, 10, 2), 5);
    await w('g', ents(11, 20, 2), 8);
    await w('h', ents(2, 4, 1), 2);
    // A new leader overwrites from 15 on with a shorter, newer-term suffix.
    await w('g', ents(15, 17, 3), 9);
    await store.close();

    store = await RaftLogStore.open(dir.path);
    let st = await store.load('g');
    assert.equal(st.firstIndex(), 2);
    assert.equal(st.lastIndex(), 17);
    assert.equal(st.term(14), 2);
    assert.equal(st.term(15), 3);
    assert.deepEqual(st.hardState(), { term: 3, vote: 'a', commit: 9 });
    assert.equal((await store.load('h')).lastIndex(), 4);
    assert.deepEqual((await store.listGroups()).sort(), ['g', 'h']);

    await store.compact('g', { index: 12, term: 2, conf });
    await w('g', ents(18, 19, 3), 19);
    await store.close();
    store = await RaftLogStore.open(dir.path);
    st = await store.load('g');
    assert.equal(st.firstIndex(), 13);
    assert.equal(st.lastIndex(), 19);
    assert.equal(st.entries(13, 20, 1 << 30).map((e) => e.data.toString()).join(','), '13@2,14@2,15@3,16@3,17@3,18@3,19@3');
    await store.removeGroup('g');
    assert.deepEqual(await store.listGroups(), ['h']);
    await store.close();
  } finally {
    dir.remove();
  }
});

test('log store: writes complete in the order given, an empty one behind a write in flight too (the host sends a Ready\'s acks when its write completes)', async () => {
  const dir = tempDir('raft-store-');
  try {
    const store = await RaftLogStore.open(dir.path);
    await store.createGroup('g', { index: 1, term: 1, conf }, { term: 1, vote: '', commit: 1 });
    const done: string[] = [];
    const full = store.write([{ groupId: 'g', entries: ents(2, 50, 1), hardState: null, hardStateMustSync: false, snapshot: null }]).then(() => done.push('entries'));
    const empty = store.write([{ groupId: 'g', entries: [], hardState: null, hardStateMustSync: false, snapshot: null }]).then(() => done.push('empty'));
    await Promise.all([full, empty]);
    assert.deepEqual(done, ['entries', 'empty']);
    await store.close();
  } finally {
    dir.remove();
  }
});
