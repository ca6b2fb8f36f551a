// Turns known errors into one readable line and an exit code; never a stack trace for user mistakes.
import { ConfigError } from '../common/config.js';
import { TierfsError } from '../common/status.js';

export function exitOnError(err: unknown): never {
  if (err instanceof ConfigError) {
    process.stderr.write(`tierfs: ${err.message}\n`);
    process.exit(2);
  }
  if (err instanceof TierfsError) {
    process.stderr.write(`tierfs: ${err.code}: ${err.message}\n`);
    process.exit(1);
  }
  if (err instanceof Error && (err as NodeJS.ErrnoException).code === 'ECONNREFUSED') {
    process.stderr.write(`tierfs: cannot connect: ${err.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`tierfs: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
}

/** Runs a command action, reporting errors through exitOnError. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      exitOnError(err);
    }
  };
}
