// The shared status codes (proto/common.proto) and their errno for the gateway.
import { constants } from 'node:os';

export const StatusCode = {
  OK: 'OK',
  NOT_LEADER: 'NOT_LEADER',
  NOT_FOUND: 'NOT_FOUND',
  EXISTS: 'EXISTS',
  NOT_EMPTY: 'NOT_EMPTY',
  NOT_DIR: 'NOT_DIR',
  IS_DIR: 'IS_DIR',
  NO_SPACE: 'NO_SPACE',
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  NAME_TOO_LONG: 'NAME_TOO_LONG',
  PERMISSION_DENIED: 'PERMISSION_DENIED',
  UNAVAILABLE: 'UNAVAILABLE',
  TIMEOUT: 'TIMEOUT',
  READ_ONLY: 'READ_ONLY',
  TX_CONFLICT: 'TX_CONFLICT',
  BUSY: 'BUSY',
  NOT_SUPPORTED: 'NOT_SUPPORTED',
  STALE_EPOCH: 'STALE_EPOCH',
  INTERNAL: 'INTERNAL',
  NO_DATA: 'NO_DATA',
  RANGE: 'RANGE',
  BEYOND_EOF: 'BEYOND_EOF',
} as const;
export type StatusCode = (typeof StatusCode)[keyof typeof StatusCode];

export interface Status {
  code: StatusCode;
  message: string;
  leader_hint: string;
}

const E = constants.errno;
const ERRNO: Record<StatusCode, number> = {
  OK: 0,
  NOT_LEADER: E.EAGAIN,
  NOT_FOUND: E.ENOENT,
  EXISTS: E.EEXIST,
  NOT_EMPTY: E.ENOTEMPTY,
  NOT_DIR: E.ENOTDIR,
  IS_DIR: E.EISDIR,
  NO_SPACE: E.ENOSPC,
  INVALID_ARGUMENT: E.EINVAL,
  NAME_TOO_LONG: E.ENAMETOOLONG,
  PERMISSION_DENIED: E.EACCES,
  UNAVAILABLE: E.EIO,
  TIMEOUT: E.ETIMEDOUT,
  READ_ONLY: E.EROFS,
  TX_CONFLICT: E.EAGAIN,
  BUSY: E.EBUSY,
  NOT_SUPPORTED: E.ENOTSUP,
  STALE_EPOCH: E.EAGAIN,
  INTERNAL: E.EIO,
  NO_DATA: E.ENODATA,
  RANGE: E.ERANGE,
  BEYOND_EOF: E.ENXIO,
};

/** The errno (positive) the gateway returns for a status code. */
export function statusToErrno(code: StatusCode): number {
  return ERRNO[code] ?? E.EIO;
}

/** An error that carries a shared status code, thrown across component boundaries. */
export class TierfsError extends Error {
  constructor(
    readonly code: StatusCode,
    message: string,
    readonly leaderHint = '',
  ) {
    super(message);
    this.name = 'TierfsError';
  }
  get errno(): number {
    return statusToErrno(this.code);
  }
  toStatus(): Status {
    return { code: this.code, message: this.message, leader_hint: this.leaderHint };
  }
}

export function ok(): Status {
  return { code: StatusCode.OK, message: '', leader_hint: '' };
}

export function statusOf(err: unknown): Status {
  if (err instanceof TierfsError) return err.toStatus();
  return { code: StatusCode.INTERNAL, message: err instanceof Error ? err.message : String(err), leader_hint: '' };
}

/** Throws a TierfsError when a response's status is not OK. */
export function check(status: { code: string; message: string; leader_hint?: string } | null | undefined, what: string): void {
  if (!status) throw new TierfsError(StatusCode.INTERNAL, `${what}: response without status`);
  if (status.code !== StatusCode.OK) {
    throw new TierfsError(status.code as StatusCode, `${what}: ${status.message || status.code}`, status.leader_hint ?? '');
  }
}
