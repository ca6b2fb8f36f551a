import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSeeds } from '../../raft/sim/run.js';
import { runMetaSeed } from '../../metaserver/sim/simulator.js';
import { checkModel } from '../../raft/sim/linearizability.js';
import { namespaceModel } from '../../metaserver/sim/model.js';

// CI runs 300 seeds: the real MetaStateMachine + CopysetNode on the real Raft runtime in the
// simulated world, in tests of 50 so that each stays far inside the per-test timeout.
for (let from = 1; from <= 300; from += 50) {
  test(`metaserver simulator seeds ${from}..${from + 49}: Raft invariants hold and the namespace history is linearizable`, async () => {
    const res = await runSeeds((s) => runMetaSeed(s), from, 50, (r) => {
      assert.ok(r.ops >= 60 || !r.ok, `seed ${r.seed}: only ${r.ops} ops in the history`);
    });
    // A history the checker could not decide within its budget is not a found violation,
    // but not a pass either: it is printed, and more than one in 50 seeds fails the test.
    // (Seed 77 was one until the runtime changed its schedule; see metaserver/README.md.)
    const undecided = res.failures.filter((f) => /checker budget of \d+ steps exhausted/.test(String(f.error)));
    for (const f of undecided) console.log(`# seed ${f.seed}: linearizability undecided (replay: npm run sim -- metaserver --seeds 1 --from ${f.seed})`);
    assert.deepEqual(
      res.failures.filter((f) => !undecided.includes(f)).map((f) => `seed ${f.seed}: ${f.error} (replay: npm run sim -- metaserver --seeds 1 --from ${f.seed})`),
      [],
    );
    assert.ok(undecided.length <= 1, `${undecided.length} of 50 seeds left undecided by the checker`);
    assert.equal(res.passed + undecided.length, 50);
  });
}

test('a metaserver seed replays exactly', async () => {
  for (const seed of [5, 78]) {
    const a = await runMetaSeed(seed);
    const b = await runMetaSeed(seed);
    assert.equal(a.ok, true, a.error);
    assert.deepEqual(a, b);
  }
});

test('a state machine that acknowledges unlinks without doing them is caught', async () => {
  const res = await runSeeds((s) => runMetaSeed(s, { brokenStateMachine: 'drop-unlink' }), 1, 10);
  assert.ok(res.failed >= 5, `only ${res.failed} of 10 seeds caught the dropped unlinks`);
});

test('the namespace model rejects a lookup that misses a completed create', () => {
  const model = namespaceModel({ dentries: new Map(), inodes: new Map(), nextIno: 3 });
  const create = { op: { kind: 'create' as const, parent: 1, name: 'a' }, call: 0, ret: 10, output: 'OK:3' };
  const stale = { op: { kind: 'lookup' as const, parent: 1, name: 'a' }, call: 20, ret: 30, output: 'NOT_FOUND' };
  assert.equal(checkModel([create, stale], model).ok, false);
  assert.equal(checkModel([create, { ...stale, call: 5 }], model).ok, true);
  // A rename is atomic: nobody sees both names or neither.
  const rename = { op: { kind: 'rename' as const, srcParent: 1, srcName: 'a', dstParent: 1, dstName: 'b', releaseIno: 0 }, call: 40, ret: 50, output: 'OK:3:0:0' };
  const both = { op: { kind: 'readdir' as const, parent: 1 }, call: 41, ret: 49, output: 'a=3,b=3' };
  assert.equal(checkModel([create, rename, both], model).ok, false);
  assert.equal(checkModel([create, rename, { ...both, output: 'b=3' }], model).ok, true);
});
