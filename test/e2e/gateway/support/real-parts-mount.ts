// Test-only entry: the gateway over real parts — a metaserver (real gRPC + level, solo raft
// groups, from the metaserver tests' fixture), a real S3 server, the S3Adaptor with a disk
// cache — mounted through FUSE in this child process. Only the MDS is replaced: the fixture's
// partition directory and a local chunk-id allocator.
// Usage: node real-parts-mount.js MOUNTPOINT ADMIN_SOCKET S3_ENDPOINT BUCKET CACHE_DIR [writeback]
import { announceReady } from '../../../../cli/ready.js';
import { createLogger } from '../../../../common/log.js';
import { DiskCache } from '../../../../diskcache/index.js';
import { sliceStoreOf } from '../../../../gateway/file-data.js';
import { startGateway } from '../../../../gateway/mount.js';
import { RemoteMetaClient } from '../../../../metaserver/client.js';
import { createObjectStore, MemoryChunkIdAllocator, S3Adaptor } from '../../../../s3adaptor/index.js';
import { startSoloMetaServer } from '../../../metaserver/fixture.js';

const [mountpoint, adminSocket, endpoint, bucket, cacheDir, mode] = process.argv.slice(2);
if (!mountpoint || !adminSocket || !endpoint || !bucket || !cacheDir) {
  process.stderr.write('usage: real-parts-mount MOUNTPOINT ADMIN_SOCKET S3_ENDPOINT BUCKET CACHE_DIR [writeback]\n');
  process.exit(2);
}
const log = createLogger('gateway-e2e');
const ms = await startSoloMetaServer(1);
await ms.addPartition(1, 1, 1, 1_000_000);
await ms.addPartition(2, 2, 1_000_001, 2_000_000);
const meta = new RemoteMetaClient({ fsId: 1, mds: ms.directory, logger: log });
const objectStore = createObjectStore({ endpoint, bucket, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', region: 'us-east-1', keyPrefix: 'fs1/', logger: log });
const diskCache = await DiskCache.open({ dir: cacheDir, capacityBytes: 2 ** 30, store: objectStore, fsync: false, logger: log });
const data = new S3Adaptor({
  fsId: 1, chunkSize: 4 * 2 ** 20, blockSize: 2 ** 20, objectStore, sliceStore: sliceStoreOf(meta),
  chunkIds: new MemoryChunkIdAllocator(), diskCache, writeback: mode === 'writeback', logger: log,
});
const gateway = await startGateway(
  { meta, data, closeExtra: async () => { await diskCache.close(); await ms.close(); } },
  {
    mountpoint, adminSocket,
    fs: { attrTimeoutMs: 0, entryTimeoutMs: 0, deleteOrphanData: true, dirPageSize: 64 },
    shutdownStepTimeoutMs: 20_000, logger: log,
    onUmountRequest: () => void stop('admin umount'),
  },
);
async function stop(reason: string): Promise<void> {
  const r = await gateway.shutdown(reason);
  process.exit(r.clean ? 0 : 1);
}
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));
announceReady({ mountpoint, pid: process.pid, adminSocket });
