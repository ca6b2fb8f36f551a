// POSIX conformance of the gateway on a real FUSE mount (in-memory metadata and data):
// every op is compared with a local directory. See conformance/suite.ts.
import { after, before, describe } from 'node:test';
import { registerConformanceSuite } from './conformance/suite.js';
import { startMemoryMount, type TestMount } from './support/mounted.js';

describe('gateway conformance, no kernel caching (memory cluster, real FUSE)', () => {
  let mount: TestMount | undefined;
  before(async () => {
    mount = await startMemoryMount(0);
  });
  after(async () => {
    await mount?.stop();
  });
  registerConformanceSuite({ mountDir: () => mount!.mountpoint, only: process.env.TIERFS_CONFORMANCE_ONLY });
});

// Long kernel caches and every case, hard links included: the kernel has one inode per file
// and this mount invalidates what it changes, so nothing may show stale through any name.
describe('gateway conformance, 30 s attr/entry caches (memory cluster, real FUSE)', () => {
  let mount: TestMount | undefined;
  before(async () => {
    mount = await startMemoryMount(30);
  });
  after(async () => {
    await mount?.stop();
  });
  registerConformanceSuite({ mountDir: () => mount!.mountpoint, only: process.env.TIERFS_CONFORMANCE_ONLY });
});
