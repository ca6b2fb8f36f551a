// Runs simulator seeds and reports; used by `tierfs sim raft|metaserver` and the tests.
export interface SeedResult {
  seed: number;
  ok: boolean;
  error?: string;
}

/** Runs one simulation; an exception (an invariant broken, liveness lost) becomes a failed result. */
export async function runSimulation<R>(sim: { run(): Promise<void>; result(ok: boolean, error?: string): R }): Promise<R> {
  try {
    await sim.run();
    return sim.result(true);
  } catch (e) {
    return sim.result(false, e instanceof Error ? `${e.name}: ${e.message}` : String(e));
  }
}

export async function runSeeds<R extends SeedResult>(
  runSeed: (seed: number) => Promise<R>,
  from: number,
  count: number,
  onResult?: (r: R) => void,
): Promise<{ passed: number; failed: number; failures: R[] }> {
  let passed = 0;
  const failures: R[] = [];
  for (let s = from; s < from + count; s++) {
    const r = await runSeed(s);
    onResult?.(r);
    if (r.ok) passed++;
    else failures.push(r);
  }
  return { passed, failed: failures.length, failures };
}
