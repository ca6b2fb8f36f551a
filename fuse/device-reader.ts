// Runs in a worker thread: blocks in read(2) on /dev/fuse and hands each request to the
// main thread as "slot * SLOT_SHIFT + length" (a plain number: the cheapest message there is).
// The request bytes sit in a SharedArrayBuffer slot that the main thread gives back when it
// is done with them, so a read never waits for the event loop and never copies.
import { readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

export interface ReaderData {
  fd: number;
  slots: SharedArrayBuffer;
  slotSize: number;
  slotCount: number;
  /** Int32: [0, slotCount) slot states (0 free, 1 taken), then GEN, STOP. */
  control: SharedArrayBuffer;
  /** Where this worker starts scanning for a free slot (spreads readers apart). */
  first: number;
}

/** Multiplier of the slot index in a message (lengths are below 4 MiB). */
export const SLOT_SHIFT = 4 * 1024 * 1024;

function main(): void {
  const port = parentPort;
  if (!port) return;
  const data = workerData as ReaderData;
  const ctl = new Int32Array(data.control);
  const GEN = data.slotCount;
  const STOP = data.slotCount + 1;
  const views: Buffer[] = [];
  for (let i = 0; i < data.slotCount; i++) views.push(Buffer.from(data.slots, i * data.slotSize, data.slotSize));
  const nap = new Int32Array(new SharedArrayBuffer(4));

  const claim = (): number => {
    for (;;) {
      if (Atomics.load(ctl, STOP) !== 0) return -1;
      const gen = Atomics.load(ctl, GEN);
      for (let i = 0; i < data.slotCount; i++) {
        const s = (data.first + i) % data.slotCount;
        if (Atomics.compareExchange(ctl, s, 0, 1) === 0) return s;
      }
      // Every slot holds a request the main thread has not finished with: wait for one back.
      Atomics.wait(ctl, GEN, gen, 1000);
    }
  };

  for (;;) {
    const slot = claim();
    if (slot < 0) break;
    let n: number;
    try {
      n = readSync(data.fd, views[slot]!, 0, data.slotSize, null);
    } catch (err) {
      Atomics.store(ctl, slot, 0);
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EINTR' || code === 'EAGAIN' || code === 'ENOENT') continue;
      if (code === 'EPERM') {
        // Not mounted yet (mount(8) still running): the device has no connection until then.
        Atomics.wait(nap, 0, 0, 2);
        continue;
      }
      const errno = Math.abs((err as NodeJS.ErrnoException).errno ?? 5);
      port.postMessage(-errno); // ENODEV (19) / ECONNABORTED: the connection is gone
      break;
    }
    port.postMessage(slot * SLOT_SHIFT + n);
  }
}

main();
