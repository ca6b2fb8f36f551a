// The conformance suite as a function of a mount path, so the same cases run against the
// in-memory gateway here and against a mount of the real cluster in e2e tests: every op of
// every case runs on a local temp directory and on the mount, and the results must match.
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { tempDir } from '../../support/tmp.js';
import { fixedCases, type Case } from './cases.js';
import { closeAll, runOp, type RunContext } from './ops.js';
import { PythonHelper } from './python-helper.js';
import { randomOps } from './random.js';

export interface ConformanceOptions {
  /** Resolved when the suite runs (the mount is started in a `before` hook). */
  mountDir: () => string;
  seeds?: number[];
  opsPerSeed?: number;
  /** Only the fixed cases whose name contains this (debugging). */
  only?: string;
  /** Fixed cases to leave out (slow on a mount whose every close goes to S3). */
  exclude?: RegExp;
  /** Register only the fixed cases or only the random sequences (to split slow mounts across files). */
  part?: 'fixed' | 'random';
}

let caseCounter = 0;

/** Runs one op list on both sides, comparing op by op; throws at the first difference. */
export async function compareOps(name: string, ops: Case['ops'], localRoot: string, mountRoot: string, py: PythonHelper): Promise<void> {
  const dirName = `case-${process.pid}-${caseCounter++}`;
  const local: RunContext = { root: join(localRoot, dirName), fds: new Map(), marks: new Map(), py };
  const mounted: RunContext = { root: join(mountRoot, dirName), fds: new Map(), marks: new Map(), py };
  mkdirSync(local.root);
  mkdirSync(mounted.root);
  try {
    for (const [i, op] of ops.entries()) {
      const want = await runOp(local, op);
      const got = await runOp(mounted, op);
      assert.deepEqual(got, want, `${name}: op #${i} ${JSON.stringify(op).slice(0, 300)} differs (mount vs local)`);
    }
  } finally {
    closeAll(local);
    closeAll(mounted);
    rmSync(local.root, { recursive: true, force: true });
    rmSync(mounted.root, { recursive: true, force: true });
  }
}

export function registerConformanceSuite(opts: ConformanceOptions): void {
  let local: { path: string; remove(): void };
  let py: PythonHelper;
  before(() => {
    local = tempDir('tierfs-conformance-local-');
    py = new PythonHelper();
  });
  after(() => {
    py?.close();
    local?.remove();
  });
  if (opts.part !== 'random') describe('fixed cases', () => {
    for (const c of fixedCases.filter((x) => (!opts.only || x.name.includes(opts.only)) && !opts.exclude?.test(x.name))) {
      test(c.name, () => compareOps(c.name, c.ops, local.path, opts.mountDir(), py));
    }
  });
  if (opts.part === 'fixed') return;
  describe('random sequences', () => {
    for (const seed of opts.seeds ?? [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]) {
      // Replay one: TIERFS_CONFORMANCE_SEED=<seed> narrows the run to it.
      if (process.env.TIERFS_CONFORMANCE_SEED && Number(process.env.TIERFS_CONFORMANCE_SEED) !== seed) continue;
      test(`seed ${seed}`, () => compareOps(`seed ${seed}`, randomOps(seed, opts.opsPerSeed ?? 150), local.path, opts.mountDir(), py));
    }
  });
}
