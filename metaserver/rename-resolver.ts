// How a rename's destination learns the outcome of a transaction whose client vanished:
// it asks the source copyset (at the peers recorded in the transaction), which aborts the
// transaction for good if it never committed.
import type { Logger } from '../common/log.js';
import type { RenameResolver } from './copyset-node.js';
import { MetaRpc } from './meta-rpc.js';
import type { RenameTxResponse__Output } from '../proto/gen/tierfs/metaserver/RenameTxResponse.js';

/** Asks a rename's source copyset (at the peers recorded in the transaction) for the outcome. */
export function renameResolver(logger: Logger): { resolve: RenameResolver; rpc: MetaRpc } {
  const peers = new Map<string, string[]>();
  const rpc = new MetaRpc({
    locator: { getCopysetLocation: async (pool, cs) => ({ peers: peers.get(`${pool}.${cs}`) ?? [], leader: '' }) },
    logger,
    deadlineMs: 10_000,
  });
  const resolve: RenameResolver = async (rec) => {
    const tx = rec.tx;
    peers.set(`${tx.srcPool}.${tx.srcCopyset}`, tx.srcPeers);
    const res = await rpc.call<RenameTxResponse__Output>(tx.srcPool, tx.srcCopyset, 'ResolveRename', {
      ref: { pool_id: tx.srcPool, copyset_id: tx.srcCopyset, partition_id: tx.srcPartition, fs_id: tx.srcFs },
      rid: rpc.newRequestId(),
      tx_id: tx.txId,
    });
    return res.committed;
  };
  return { resolve, rpc };
}
