// The gateway conformance suite (every op on a local dir and on the mount, results compared)
// against `tierfs mount` of the real full cluster: MDS, 3 Raft metaservers, s3rver. The
// conformance-real-* tests in e2e/gateway run the same cases over a solo metaserver with the
// MDS replaced; here partitions, chunk ids and sessions come from the real MDS and every
// metadata op is replicated. Fixed cases plus one short random sequence, to stay quick;
// 0 s attr/entry timeouts so the kernel caches nothing and hard-link cases can run.
import { after, before, describe } from 'node:test';
import { registerConformanceSuite } from '../gateway/conformance/suite.js';
import { startCluster, type TestCluster } from './support/cluster.js';

describe('gateway conformance over the full cluster (MDS, 3 metaservers, s3rver, tierfs mount)', () => {
  let cluster: TestCluster | undefined;
  let mountpoint = '';
  before(async () => {
    cluster = await startCluster('conform');
    mountpoint = (await cluster.mount({ name: 'mnt', writeback: true, cacheTimeoutSec: 0 })).mountpoint;
  });
  after(async () => {
    await cluster?.close();
  });
  registerConformanceSuite({
    mountDir: () => mountpoint,
    seeds: [21],
    opsPerSeed: 80,
    only: process.env.TIERFS_CONFORMANCE_ONLY,
    exclude: /large directory/,
  });
});
