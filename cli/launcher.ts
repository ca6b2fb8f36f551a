// Starts tierfs daemons detached from the CLI (for `tierfs up`), with stdout+stderr in a
// log file, and waits for the TIERFS_READY line in that file. The CLI can then exit while
// the daemons keep running; `tierfs down` stops them by the PIDs recorded in the data dir.
import { spawn } from 'node:child_process';
import { openSync, readFileSync, existsSync, closeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { READY_PREFIX } from './ready.js';

export const cliEntry = fileURLToPath(new URL('./main.js', import.meta.url));

export interface Launched {
  name: string;
  pid: number;
  log: string;
  info: Record<string, unknown>;
}

export function readReady(log: string, fromByte = 0): Record<string, unknown> | null {
  if (!existsSync(log)) return null;
  const text = readFileSync(log, 'utf8').slice(fromByte);
  for (const line of text.split('\n')) {
    if (line.startsWith(READY_PREFIX)) {
      try {
        return JSON.parse(line.slice(READY_PREFIX.length)) as Record<string, unknown>;
      } catch {
        return null;
      }
    }
  }
  return null;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function tail(log: string, lines = 15): string {
  if (!existsSync(log)) return '';
  return readFileSync(log, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

export async function launchDaemon(name: string, args: string[], log: string, timeoutMs = 60_000, env: NodeJS.ProcessEnv = {}): Promise<Launched> {
  const start = existsSync(log) ? readFileSync(log).length : 0;
  const fd = openSync(log, 'a', 0o600);
  const child = spawn(process.execPath, [cliEntry, ...args], {
    detached: true,
    stdio: ['ignore', fd, fd],
    env: { ...process.env, ...env },
  });
  closeSync(fd);
  child.unref();
  const pid = child.pid!;
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const info = readReady(log, start);
    if (info) return { name, pid, log, info };
    if (!isAlive(pid)) throw new Error(`${name} exited during start; last lines of ${log}:\n${tail(log)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
  throw new Error(`${name} not ready after ${timeoutMs / 1000} s; last lines of ${log}:\n${tail(log)}`);
}

/** SIGTERM, wait up to graceMs, then SIGKILL. Resolves true if it had to kill. */
export async function stopPid(pid: number, graceMs = 15_000): Promise<boolean> {
  if (!isAlive(pid)) return false;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return false;
  }
  const until = Date.now() + graceMs;
  while (Date.now() < until) {
    if (!isAlive(pid)) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
  return true;
}
