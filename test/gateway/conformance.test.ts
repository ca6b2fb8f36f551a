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

describe('gateway conformance, 1 s attr/entry caches (memory cluster, real FUSE)', () => {
  let mount: TestMount | undefined;
  before(async () => {
    mount = await startMemoryMount(1);
  });
  after(async () => {
    await mount?.stop();
  });
  registerConformanceSuite({ mountDir: () => mount!.mountpoint, only: process.env.TIERFS_CONFORMANCE_ONLY, kernelCaches: true });
});
