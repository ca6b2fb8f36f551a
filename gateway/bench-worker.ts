// One file loop of `npm run bench -- namespace`, in a worker thread: plain blocking system
// calls, as a shell tool makes them, so the mount (another process) is what is measured.
import { closeSync, constants, openSync, renameSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';

export interface LoopJob {
  op: 'create' | 'rename' | 'unlink';
  dir: string;
  /** Files `${prefix}${i}` for i in [from, from + count); rename moves them to `r${prefix}${i}`. */
  prefix: string;
  from: number;
  count: number;
}

export interface LoopResult {
  ops: number;
  seconds: number;
}

function runLoop(job: LoopJob): LoopResult {
  const name = (i: number) => join(job.dir, `${job.prefix}${i}`);
  const t0 = process.hrtime.bigint();
  for (let i = job.from; i < job.from + job.count; i++) {
    if (job.op === 'create') closeSync(openSync(name(i), constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o644));
    else if (job.op === 'rename') renameSync(name(i), join(job.dir, `r${job.prefix}${i}`));
    else unlinkSync(join(job.dir, `r${job.prefix}${i}`));
  }
  return { ops: job.count, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

if (parentPort) parentPort.postMessage(runLoop(workerData as LoopJob));
