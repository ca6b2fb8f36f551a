// Mounts a MemFs for real on a fresh temp dir, and runs commands against it from child
// processes (a synchronous syscall from this process would wait on the server that runs in
// this very process).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mountFuse, type FuseMountOptions, type FuseSession } from '../../../fuse/index.js';
import { MemFs, type MemFsOptions } from '../../../fuse/mem-fs.js';

export interface Mounted {
  dir: string;
  fs: MemFs;
  session: FuseSession;
  /** Unmounts (lazily if busy) and removes the temp dir. */
  close(): Promise<void>;
}

export async function mountMem(memOpts: MemFsOptions = {}, mountOpts: Partial<FuseMountOptions> = {}): Promise<Mounted> {
  const dir = mkdtempSync(join(tmpdir(), 'fuse-test-'));
  const fs = new MemFs(memOpts);
  const session = await mountFuse(dir, fs, { fsname: 'memfs:test', subtype: 'memfs', ...mountOpts });
  return {
    dir,
    fs,
    session,
    async close() {
      await session.unmount({ lazy: true }).catch(() => session.abort().catch(() => {}));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; never rejects on a non-zero exit. */
export function run(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = (err as { code?: unknown } | null)?.code;
      // A string code (ENOENT...) means the command could not run at all.
      if (typeof code === 'string') return reject(err);
      resolve({ code: err ? (typeof code === 'number' ? code : 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}

/** python3 -c script with args; stdout is the result. Throws with stderr on failure. */
export async function py(script: string, ...args: string[]): Promise<string> {
  const r = await run('python3', ['-c', script, ...args]);
  if (r.code !== 0) throw new Error(`python3 failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

