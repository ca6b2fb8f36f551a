// The kernel's readahead window of a FUSE mount. FUSE mounts start at 128 KiB and libfuse 2
// can only lower it at init; a larger window keeps several read requests in flight, which is
// what lets a sequential reader outrun one round trip per request (dd of 512 MiB through a
// mount with 1 MiB requests: 554-644 MB/s at 128 KiB, 1.2-1.7 GB/s at 1024, 1.6-2.0 at 4096;
// with 128 KiB requests 256-292 MB/s at 128 KiB, 381-395 at 1024). The knob is /sys/class/bdi/MAJOR:MINOR/read_ahead_kb of the mount's device,
// writable by root only; elsewhere the mount keeps the kernel default and says so.
import { stat, writeFile } from 'node:fs/promises';
import type { Logger } from '../common/log.js';

/** Linux dev_t -> "major:minor", as /sys/class/bdi names devices (glibc's encoding). */
export function bdiName(dev: number): string {
  const major = Math.floor(dev / 256) & 0xfff;
  const minor = (dev & 0xff) | (Math.floor(dev / 4096) & 0xfff00);
  return `${major}:${minor}`;
}

/** Sets the readahead window of the filesystem mounted at `mountpoint`; false when it could not. */
export async function setReadAhead(mountpoint: string, kib: number, log: Logger): Promise<boolean> {
  const path = `/sys/class/bdi/${bdiName((await stat(mountpoint)).dev)}/read_ahead_kb`;
  try {
    await writeFile(path, `${Math.max(0, Math.floor(kib))}\n`);
    log.debug({ path, kib }, 'readahead window set');
    return true;
  } catch (err) {
    log.info({ path, kib, err: (err as Error).message }, 'could not set the readahead window (needs root); keeping the kernel default');
    return false;
  }
}
