// The per-mount admin endpoint: a unix socket (mode 0600) next to the cache, answering one
// JSON request per line with one JSON response line. `tierfs cache stats|flush|warmup|
// evict|config --mount M` and `tierfs umount` talk to it.
import { chmodSync, existsSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { silentLogger, type Logger } from '../common/log.js';
import { StatusCode, TierfsError } from '../common/status.js';

export const ADMIN_COMMANDS = ['stats', 'flush', 'umount', 'warmup', 'evict', 'config'] as const;
export type AdminCommand = (typeof ADMIN_COMMANDS)[number];

export interface AdminRequest {
  cmd: AdminCommand;
  /** Command arguments; the handler validates them. */
  args?: unknown;
}

export interface AdminResponse {
  ok: boolean;
  error?: string;
  /** The StatusCode of a failed request, when the mount knew it. */
  code?: StatusCode;
  result?: unknown;
}

export type AdminHandler = (cmd: AdminCommand, args: unknown) => Promise<unknown>;

/** Bound on one request line: requests are tiny; a huge line is a confused client. */
const MAX_REQUEST_BYTES = 64 * 1024;

export async function startAdminServer(socketPath: string, handle: AdminHandler, log: Logger = silentLogger): Promise<Server> {
  if (existsSync(socketPath)) rmSync(socketPath, { force: true });
  const server = createServer((sock: Socket) => {
    let buf = '';
    sock.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      if (buf.length > MAX_REQUEST_BYTES) {
        sock.destroy();
        return;
      }
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      const line = buf.slice(0, nl);
      buf = '';
      let req: AdminRequest;
      try {
        req = JSON.parse(line) as AdminRequest;
      } catch {
        sock.end(JSON.stringify({ ok: false, error: 'request is not JSON' }) + '\n');
        return;
      }
      if (!(ADMIN_COMMANDS as readonly string[]).includes(req.cmd)) {
        sock.end(JSON.stringify({ ok: false, error: `unknown command ${String(req.cmd)}` }) + '\n');
        return;
      }
      handle(req.cmd, req.args).then(
        (result) => sock.end(JSON.stringify({ ok: true, result } satisfies AdminResponse) + '\n'),
        (err: unknown) => {
          log.warn({ cmd: req.cmd, err: String(err) }, 'admin request failed');
          const res: AdminResponse = { ok: false, error: err instanceof Error ? err.message : String(err), ...(err instanceof TierfsError ? { code: err.code } : {}) };
          sock.end(JSON.stringify(res) + '\n');
        },
      );
    });
    sock.on('error', () => sock.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  chmodSync(socketPath, 0o600);
  return server;
}

export function closeAdminServer(server: Server, socketPath: string): Promise<void> {
  return new Promise((resolve) =>
    server.close(() => {
      rmSync(socketPath, { force: true });
      resolve();
    }),
  );
}

/** Sends one admin request; rejects when the mount does not answer within timeoutMs. */
export function adminRequest(socketPath: string, cmd: AdminCommand, timeoutMs = 600_000, args?: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(socketPath);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`the mount did not answer '${cmd}' within ${timeoutMs} ms (${socketPath})`));
    }, timeoutMs);
    sock.on('connect', () => sock.write(JSON.stringify({ cmd, args } satisfies AdminRequest) + '\n'));
    sock.on('data', (c: Buffer) => (buf += c.toString()));
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot reach the mount's admin socket ${socketPath}: ${err.message}`));
    });
    sock.on('close', () => {
      clearTimeout(timer);
      if (!buf) return reject(new Error(`the mount closed the admin connection without an answer (${socketPath})`));
      const res = JSON.parse(buf.trim()) as AdminResponse;
      if (!res.ok) reject(new TierfsError(res.code ?? StatusCode.INTERNAL, res.error ?? 'admin request failed'));
      else resolve(res.result);
    });
  });
}
