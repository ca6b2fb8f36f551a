// An in-process metaserver (real gRPC on loopback, level on disk) over single-member
// groups, plus a PartitionDirectory standing in for the MDS, for client tests.
import { join } from 'node:path';
import { Level } from 'level';
import { startGrpcServer, type RunningServer } from '../../common/grpc.js';
import { CopysetNodeManager } from '../../metaserver/copyset-manager.js';
import type { ObjectDeleter } from '../../metaserver/copyset-node.js';
import { metaServerService } from '../../metaserver/service.js';
import { copysetService } from '../../metaserver/copyset-service.js';
import { metaDumpService } from '../../metaserver/dump-service.js';
import type { PartitionDirectory, PartitionLocationInfo } from '../../metaserver/client.js';
import { SoloRaftHost } from './solo-raft.js';
import { renameResolver } from '../../metaserver/rename-resolver.js';
import { silentLogger } from '../../common/log.js';
import { tempDir } from '../support/tmp.js';
import { TierfsError } from '../../common/status.js';
import { S_IFDIR, S_IFREG } from '../../metaserver/meta-client.js';
import { freePort } from '../support/ports.js';

/** Options of a file and a directory made by the tests, and a matcher of a TierfsError code. */
export const fileOpts = { mode: S_IFREG | 0o644, uid: 1, gid: 1, exclusive: true };
export const dirOpts = { mode: S_IFDIR | 0o755, uid: 1, gid: 1, exclusive: true };
export const hasCode = (c: string) => (err: unknown) => err instanceof TierfsError && err.code === c;

export interface SoloMetaServer {
  address: string;
  manager: CopysetNodeManager;
  directory: PartitionDirectory & { partitions: PartitionLocationInfo[] };
  addPartition(copysetId: number, partitionId: number, start: number, end: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * `deleter`: what the trash job deletes a purged inode's objects with (none: it only purges);
 * `txResolveAfterMs`: age at which an abandoned rename is resolved.
 */
export async function startSoloMetaServer(fsId = 1, deleter?: ObjectDeleter, txResolveAfterMs = 300): Promise<SoloMetaServer> {
  const tmp = tempDir('tierfs-meta-');
  const address = `127.0.0.1:${await freePort()}`;
  const db = new Level<string, string>(join(tmp.path, 'db'));
  await db.open();
  const resolver = renameResolver(silentLogger);
  const manager = new CopysetNodeManager({
    host: new SoloRaftHost(address), db, selfAddress: address,
    node: { resolver: resolver.resolve, txResolveAfterMs, backgroundIntervalMs: 100, ...(deleter ? { deleter } : {}) },
  });
  const server: RunningServer = await startGrpcServer(address, [metaServerService(manager), copysetService(manager), metaDumpService(manager)]);
  const partitions: PartitionLocationInfo[] = [];
  let nextStart = 1_000_000;
  const addPartition = async (copysetId: number, partitionId: number, start: number, end: number) => {
    if (!manager.has(1, copysetId)) await manager.create(1, copysetId, [address]);
    await manager.get(1, copysetId).writeOk({
      op: 'createPartition', partition: { fsId, poolId: 1, copysetId, partitionId, start, end }, now: Date.now(),
    });
    partitions.push({ partition: { fs_id: fsId, pool_id: 1, copyset_id: copysetId, partition_id: partitionId, start, end }, peers: [address], leader: address, read_only: false });
  };
  const directory = {
    partitions,
    listPartitions: async () => partitions.map((p) => ({ ...p })),
    createPartitions: async (_fs: number, count: number) => {
      for (let i = 0; i < count; i++) {
        const id = partitions.length + 1;
        await addPartition(1 + (id % 2), id, nextStart, nextStart + 999);
        nextStart += 1000;
      }
      return partitions;
    },
    getCopysetLocation: async () => ({ peers: [address], leader: address }),
  };
  return {
    address, manager, directory, addPartition,
    close: async () => {
      manager.close();
      resolver.rpc.close();
      await server.close();
      await db.close();
      tmp.remove();
    },
  };
}
