// Runs simulator seeds and reports; used by `tierfs sim raft|metaserver` and the tests.
export interface SeedResult {
  seed: number;
  ok: boolean;
  error?: string;
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
