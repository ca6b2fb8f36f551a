// Bounded parallelism for a list of tasks (the block objects of one flush).
/** Runs tasks with at most `limit` at once; rejects with the first failure after all settle. */
export async function runLimited(tasks: Array<() => Promise<void>>, limit: number): Promise<void> {
  let next = 0;
  let failure: unknown = null;
  const worker = async () => {
    while (next < tasks.length) {
      const t = tasks[next++]!;
      try {
        await t();
      } catch (err) {
        failure ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  if (failure !== null) throw failure;
}
