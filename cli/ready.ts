// The readiness line daemons print on stdout once they serve; spawners wait for it.
export const READY_PREFIX = 'TIERFS_READY ';

export function announceReady(info: Record<string, unknown>): void {
  process.stdout.write(`${READY_PREFIX}${JSON.stringify(info)}\n`);
}
