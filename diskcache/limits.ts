// The limits of a disk cache (`tierfs cache config` shows and changes them) and their checks.
import { StatusCode, TierfsError } from '../common/status.js';

/** What `tierfs cache config` shows and changes. */
export interface DiskCacheLimits {
  capacityBytes: number;
  maxFiles: number;
  stageWatermark: number;
  trimHighWatermark: number;
  trimLowWatermark: number;
  uploadConcurrency: number;
}

export function checkLimits(l: DiskCacheLimits): void {
  const bad = (msg: string) => new TierfsError(StatusCode.INVALID_ARGUMENT, `disk cache: ${msg}`);
  if (!Number.isSafeInteger(l.capacityBytes) || l.capacityBytes < 1) throw bad(`capacity ${l.capacityBytes} must be a positive number of bytes`);
  if (!Number.isSafeInteger(l.maxFiles) || l.maxFiles < 1) throw bad(`file cap ${l.maxFiles} must be a positive integer`);
  if (!Number.isSafeInteger(l.uploadConcurrency) || l.uploadConcurrency < 1 || l.uploadConcurrency > 256) {
    throw bad(`upload concurrency ${l.uploadConcurrency} must be an integer in 1..256`);
  }
  const w = [l.trimLowWatermark, l.trimHighWatermark, l.stageWatermark];
  if (!w.every((x) => Number.isFinite(x) && x > 0 && x <= 1) || !(l.trimLowWatermark < l.trimHighWatermark && l.trimHighWatermark <= l.stageWatermark)) {
    throw bad(`watermarks must satisfy 0 < trimLow (${l.trimLowWatermark}) < trimHigh (${l.trimHighWatermark}) <= stage (${l.stageWatermark}) <= 1`);
  }
}

/** A broken bookkeeping rule is a bug: fail loudly where the numbers change. */
export function invariant(cond: boolean, what: () => string): asserts cond {
  if (!cond) throw new TierfsError(StatusCode.INTERNAL, `invariant broken: ${what()}`);
}
