// The client side of "unlink into the recycle bin in one Raft entry" (issue 12). A name can
// move into a bin directory in one entry only when that directory keeps its names in the
// name's own copyset, so /.trash has one shard per copyset, `/.trash/cs-{pool}-{copyset}`
// (trash-bin.ts), its inode placed in that copyset. Shards are found or made once per client
// and copyset; a mount racing another to make one takes the other's.
import { StatusCode, TierfsError } from '../common/status.js';
import type { RemoteMetaClient } from './client.js';
import { checkName, isElsewhere } from './client.js';
import type * as M from './client-types.js';
import { msgToInode } from './convert.js';
import { S_IFDIR, type TrashRemoval } from './meta-client.js';
import type { PartitionRoute } from './partition-router.js';
import { ensureTrashDir, trashShardName } from './trash-bin.js';

interface Shard {
  ino: number;
  route: PartitionRoute;
}

const sameCopyset = (a: PartitionRoute, b: PartitionRoute) => a.poolId === b.poolId && a.copysetId === b.copysetId;

export class TrashShards {
  private readonly shards = new Map<string, Promise<Shard>>();
  private trashDir: Promise<number> | null = null;

  constructor(private readonly c: RemoteMetaClient) {}

  /** The shard of `r`'s copyset, found or made. */
  of(r: PartitionRoute): Promise<Shard> {
    const name = trashShardName(r.poolId, r.copysetId);
    let shard = this.shards.get(name);
    if (!shard) {
      shard = this.find(name, r);
      shard.catch(() => this.shards.delete(name));
      this.shards.set(name, shard);
    }
    return shard;
  }

  /** Forgets what is known of `r`'s shard (it was removed, or lives elsewhere). */
  forget(r: PartitionRoute): void {
    this.shards.delete(trashShardName(r.poolId, r.copysetId));
    this.trashDir = null;
  }

  private async find(name: string, r: PartitionRoute): Promise<Shard> {
    this.trashDir ??= ensureTrashDir(this.c);
    const bin = await this.trashDir.catch((err: unknown) => {
      this.trashDir = null;
      throw err;
    });
    let ino: number;
    try {
      ino = (await this.c.createNodeWithParent(bin, name, { mode: S_IFDIR | 0o700, uid: 0, gid: 0, exclusive: true }, r)).inode.ino;
    } catch (err) {
      if (!(err instanceof TierfsError && err.code === StatusCode.EXISTS)) throw err;
      ino = (await this.c.lookup(bin, name)).ino;
    }
    return { ino, route: await this.c.router.route(ino) };
  }
}

/**
 * One TrashNode entry: the name moves into its copyset's shard, or (a file with other names)
 * loses this name. NOT_SUPPORTED, nothing changed, when the shard or the inode is elsewhere.
 */
export async function removeToTrash(c: RemoteMetaClient, shards: TrashShards, parent: number, name: string, dir: boolean): Promise<TrashRemoval> {
  checkName(name);
  const pr = await c.router.route(parent);
  const shard = await shards.of(pr);
  if (!sameCopyset(shard.route, pr)) {
    throw new TierfsError(StatusCode.NOT_SUPPORTED, `the recycle bin shard for copyset ${pr.copysetId} lives in copyset ${shard.route.copysetId}`);
  }
  try {
    const res = await c.retryConflicts(() => c.call<M.TrashNodeResponse>(pr, 'TrashNode', {
      parent, name, dir, trash_partition_id: shard.route.partitionId, trash_dir: shard.ino,
    }, true));
    return { inode: msgToInode(res.inode!), entry: res.entry || null, binDir: shard.ino, ...(res.parent_inode ? { parent: msgToInode(res.parent_inode) } : {}) };
  } catch (err) {
    // The shard may have been removed: found again next time.
    if (isElsewhere(err)) shards.forget(pr);
    throw err;
  }
}
