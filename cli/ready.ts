// The readiness line daemons print on stdout once they serve; spawners wait for it.
export const READY_PREFIX = 'TIERFS_READY ';

export function announceReady(info: Record<string, unknown>): void {
  process.stdout.write(`${READY_PREFIX}${JSON.stringify(info)}\n`);
}

/**
 * SIGTERM or SIGINT closes a foreground daemon once (a second signal while it closes does
 * not start another close), then the process exits.
 */
export function stopOnSignals(close: () => Promise<unknown>): void {
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
