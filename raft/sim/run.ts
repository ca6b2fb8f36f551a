// Runs simulator seeds and reports; used by `tierfs sim raft` and the tests.
import { runSeed, type SimOptions, type SimResult } from './simulator.js';

export function runSeeds(from: number, count: number, opts: SimOptions = {}, onResult?: (r: SimResult) => void): { passed: number; failed: number; failures: SimResult[] } {
  let passed = 0;
  const failures: SimResult[] = [];
  for (let s = from; s < from + count; s++) {
    const r = runSeed(s, opts);
    onResult?.(r);
    if (r.ok) passed++;
    else failures.push(r);
  }
  return { passed, failed: failures.length, failures };
}
