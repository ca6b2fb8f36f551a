// Structured JSON logs (pino), one logger per daemon with a component name.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(component: string, level = process.env.TIERFS_LOG_LEVEL ?? 'info'): Logger {
  // Logs go to stderr so stdout stays free for the readiness line and CLI output.
  return pino({ name: component, level, base: { pid: process.pid, component } }, pino.destination(2));
}

/** A logger that drops everything, for tests and libraries used without a daemon. */
export const silentLogger: Logger = pino({ level: 'silent' });
