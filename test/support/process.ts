// Child processes for tests: spawn, wait for readiness, stop by PID (kill -9 when asked).
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { READY_PREFIX } from '../../cli/ready.js';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const cliPath = join(repoRoot, 'dist', 'cli', 'main.js');

export interface Spawned<I = Record<string, unknown>> {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly info: I;
  /** SIGTERM, then SIGKILL after a grace period; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
  kill9(): Promise<void>;
  exited(): Promise<number | null>;
}

export interface SpawnOptions {
  logFile?: string;
  env?: NodeJS.ProcessEnv;
  readyTimeoutMs?: number;
  /** Wait for a line (stdout or stderr) matching this instead of the TIERFS_READY line. */
  readyPattern?: RegExp;
  /** Or poll this until it resolves true. */
  readyProbe?: () => Promise<boolean>;
  cwd?: string;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});

export function spawnProcess<I = Record<string, unknown>>(cmd: string, args: string[], opts: SpawnOptions = {}): Promise<Spawned<I>> {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env }, cwd: opts.cwd });
  live.add(proc);
  const exit = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => {
      live.delete(proc);
      resolve(code);
    }),
  );
  const log = opts.logFile ? createWriteStream(opts.logFile, { flags: 'a' }) : null;
  let tail = '';
  const keepTail = (chunk: Buffer) => {
    log?.write(chunk);
    tail = (tail + chunk.toString()).slice(-4000);
  };
  proc.stderr!.on('data', (chunk: Buffer) => {
    keepTail(chunk);
    if (opts.readyPattern?.test(chunk.toString())) onReady({} as I);
  });
  let onReady: (info: I) => void = () => {};
  return new Promise((resolve, reject) => {
    let buf = '';
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      proc.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')}: not ready after ${opts.readyTimeoutMs ?? 30000} ms\n${tail}`));
    }, opts.readyTimeoutMs ?? 30_000);
    const stop = async (graceMs = 5000) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exit;
      clearTimeout(t);
    };
    const kill9 = async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGKILL');
      await exit;
    };
    onReady = (info: I) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ proc, pid: proc.pid!, info, stop, kill9, exited: () => exit });
    };
    if (opts.readyProbe) {
      const probe = opts.readyProbe;
      const poll = async () => {
        while (!done) {
          if (await probe().catch(() => false)) return onReady({} as I);
          await new Promise((r) => setTimeout(r, 100));
        }
      };
      void poll();
    }
    proc.stdout!.on('data', (chunk: Buffer) => {
      keepTail(chunk);
      if (done) return;
      buf += chunk.toString();
      for (const line of buf.split('\n')) {
        let info: I | null = null;
        if (opts.readyPattern ? opts.readyPattern.test(line) : line.startsWith(READY_PREFIX)) {
          info = (opts.readyPattern ? {} : JSON.parse(line.slice(READY_PREFIX.length))) as I;
        }
        if (info) return onReady(info);
      }
      buf = buf.slice(buf.lastIndexOf('\n') + 1);
    });
    void exit.then((code) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(new Error(`${cmd} ${args.join(' ')} exited with ${code} before ready\n${tail}`));
    });
  });
}

/** Spawns `tierfs <args>` from dist/ and waits for its TIERFS_READY line. */
export function spawnDaemon<I = Record<string, unknown>>(args: string[], opts: SpawnOptions = {}): Promise<Spawned<I>> {
  // Test daemons run without a cluster key unless a test gives them one (trust tests do).
  return spawnProcess<I>(process.execPath, [cliPath, ...args], { ...opts, env: { TIERFS_ALLOW_UNAUTHENTICATED: '1', ...opts.env } });
}
