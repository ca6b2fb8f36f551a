import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSeeds } from '../../raft/sim/run.js';
import { runSeed } from '../../raft/sim/simulator.js';
import { checkKey, type HistoryOp } from '../../raft/sim/linearizability.js';

// CI runs 300 seeds of the real runtime (RaftHost/GroupNode over the simulated world), in
// tests of 50 so that each stays far inside the per-test timeout on a loaded machine.
for (let from = 1; from <= 300; from += 50) {
  test(`raft simulator seeds ${from}..${from + 49} keep every safety invariant and linearizable histories`, async () => {
    const res = await runSeeds((s) => runSeed(s), from, 50, (r) => {
      assert.ok(r.ops >= 80 || !r.ok, `seed ${r.seed}: only ${r.ops} ops in the history`);
    });
    assert.deepEqual(
      res.failures.map((f) => `seed ${f.seed}: ${f.error} (replay: npm run sim -- raft --seeds 1 --from ${f.seed})`),
      [],
    );
    assert.equal(res.passed, 50);
  });
}

test('a seed replays exactly (same digest, same faults, same history)', async () => {
  for (const seed of [7, 123, 4242]) {
    const a = await runSeed(seed);
    const b = await runSeed(seed);
    assert.equal(a.ok, true, a.error);
    assert.deepEqual(a, b);
  }
});

test('a state machine that drops writes is caught', async () => {
  const res = await runSeeds((s) => runSeed(s, { brokenStateMachine: 'drop-put' }), 1, 10);
  assert.ok(res.failed >= 5, `only ${res.failed} of 10 seeds caught the dropped writes`);
  assert.match(res.failures[0]!.error!, /not linearizable|different state/);
});

test('a raft whose disk acknowledges fsync without doing it (acks before persisting) is caught', async () => {
  const res = await runSeeds((s) => runSeed(s, { lyingDisks: true }), 1, 20);
  assert.ok(res.failed >= 3, `only ${res.failed} of 20 seeds caught the lost acknowledged writes`);
});

test('the linearizability checker rejects a stale read and accepts concurrent overlap', () => {
  const put = (client: number, value: string, call: number, ret: number): HistoryOp => ({ client, op: { kind: 'put', key: 'k', value }, call, ret, output: true });
  const get = (client: number, call: number, ret: number, output: string | null): HistoryOp => ({ client, op: { kind: 'get', key: 'k' }, call, ret, output });
  // put(a) completes, then a read returns the old (null) value: not linearizable.
  assert.equal(checkKey([put(0, 'a', 0, 10), get(1, 20, 30, null)]), false);
  // The read overlaps the put: either value is fine.
  assert.equal(checkKey([put(0, 'a', 0, 10), get(1, 5, 30, null)]), true);
  // A put with unknown outcome may have happened later.
  assert.equal(checkKey([{ ...put(0, 'a', 0, Infinity), output: undefined }, get(1, 5, 6, null), get(1, 7, 8, 'a')]), true);
  // ...but cannot un-happen.
  assert.equal(checkKey([{ ...put(0, 'a', 0, Infinity), output: undefined }, get(1, 7, 8, 'a'), get(1, 9, 10, null)]), false);
  // cas results must agree with the order.
  const cas = (client: number, expected: string | null, value: string, call: number, ret: number, output: boolean): HistoryOp => ({ client, op: { kind: 'cas', key: 'k', expected, value }, call, ret, output });
  assert.equal(checkKey([cas(0, null, 'x', 0, 1, true), cas(1, null, 'y', 2, 3, true)]), false);
  assert.equal(checkKey([cas(0, null, 'x', 0, 3, true), cas(1, null, 'y', 1, 4, false), get(2, 5, 6, 'x')]), true);
});
