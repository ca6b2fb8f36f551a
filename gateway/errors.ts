// Errors of the POSIX layer: every failure carries the errno the application should see.
import { constants } from 'node:os';
import { TierfsError } from '../common/status.js';

export const E = constants.errno;

/** A failure that has no shared status code (EBADF, EROFS from the mount itself, ...). */
export class PosixError extends Error {
  constructor(
    readonly errno: number,
    message: string,
  ) {
    super(message);
    this.name = 'PosixError';
  }
}

export function posix(errno: number, message: string): PosixError {
  return new PosixError(errno, message);
}

/** The positive errno for any error thrown below the FUSE adapter (EIO for the unknown). */
export function errnoOf(err: unknown): number {
  if (err instanceof PosixError || err instanceof TierfsError) return err.errno;
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (typeof code === 'string' && code in E) return E[code as keyof typeof E];
  return E.EIO;
}
