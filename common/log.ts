// Structured JSON logs (pino), one logger per daemon with a component name.
import { pino, type Logger } from 'pino';

export type { Logger };

/** Fields that hold secrets, at any of the first three levels of a log record. */
const SECRET_FIELDS = ['secret_key', 'secretKey', 'secretAccessKey', 'sessionToken', 'clusterKey', 'authorization'];
export const REDACTED_PATHS = SECRET_FIELDS.flatMap((f) => [f, `*.${f}`, `*.*.${f}`]);

export function createLogger(component: string, level = process.env.TIERFS_LOG_LEVEL ?? 'info'): Logger {
  // Logs go to stderr so stdout stays free for the readiness line and CLI output.
  return pino(
    { name: component, level, base: { pid: process.pid, component }, redact: { paths: REDACTED_PATHS, censor: '***' } },
    pino.destination(2),
  );
}

/** A logger that drops everything, for tests and libraries used without a daemon. */
export const silentLogger: Logger = pino({ level: 'silent' });
