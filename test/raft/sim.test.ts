import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSeeds } from '../../raft/sim/run.js';
import { runSeed } from '../../raft/sim/simulator.js';
import { checkKey, type HistoryOp } from '../../raft/sim/linearizability.js';

test('500 simulator seeds keep every safety invariant and linearizable histories', () => {
  const res = runSeeds(1, 500, {}, (r) => {
    assert.ok(r.ops >= 200 || !r.ok, `seed ${r.seed}: only ${r.ops} ops in the history`);
  });
  assert.deepEqual(
    res.failures.map((f) => `seed ${f.seed}: ${f.error}`),
    [],
  );
  assert.equal(res.passed, 500);
});

test('a seed replays exactly (same digest, same faults, same history)', () => {
  for (const seed of [7, 123, 4242]) {
    const a = runSeed(seed);
    const b = runSeed(seed);
    assert.equal(a.ok, true, a.error);
    assert.deepEqual(a, b);
  }
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
