// The records a batch of operations will read, read from level in one getMany before the batch
// is applied. Applying reads record by record, each read a trip through level's thread pool;
// a batch of 64 creates made ~130 such trips one after another (most of the 55 ms such a
// batch took in `npm run bench -- metaserver`). A prefetch only warms the record cache, so a
// key it misses or guesses wrong costs a read later, never a different result.
import type { CopysetKeys } from './keys.js';
import { PRUNE_EVERY, type MetaOp } from './records.js';
import { trashEntryName } from './trash-bin.js';

/** Where the names and inodes an operation touches live: the key, and the partition of a name's target. */
export interface PrefetchPlan {
  keys: string[];
  /**
   * Dentries whose target inode is read too (found once the dentry is read), and `more`
   * keys that depend on that inode (a recycle-bin entry's name carries it).
   */
  names: Array<{ pid: number; key: string; more?: (ino: number) => string[] }>;
}

/** Keys known from the operation alone (its request id, names, parents and inodes). */
export function plannedReads(keys: CopysetKeys, op: MetaOp, plan: PrefetchPlan): void {
  if ('rid' in op && op.rid) {
    plan.keys.push(keys.request(op.rid.clientId, op.rid.seq));
    if (op.rid.seq % PRUNE_EVERY === 0) plan.keys.push(keys.requestWatermark(op.rid.clientId));
  }
  const name = (pid: number, parent: number, n: string, target: boolean) => {
    const key = keys.dentry(pid, parent, n);
    plan.keys.push(key, keys.inode(pid, parent));
    if (target) plan.names.push({ pid, key });
  };
  switch (op.op) {
    case 'createNode':
    case 'createDentry':
      name(op.pid, op.parent, op.name, false);
      break;
    case 'linkNode':
      name(op.pid, op.parent, op.name, false);
      plan.keys.push(keys.inode(op.pid, op.ino));
      break;
    case 'removeNode':
    case 'deleteDentry':
      name(op.pid, op.parent, op.name, true);
      break;
    case 'trashNode': {
      name(op.pid, op.parent, op.name, false);
      // The bin directory, and the entry name the move will take (checked free, then written).
      plan.keys.push(keys.inode(op.trashPid, op.trashDir));
      const entry = (ino: number) => [keys.dentry(op.trashPid, op.trashDir, trashEntryName(op.now, op.parent, ino, op.name).entry)];
      plan.names.push({ pid: op.pid, key: keys.dentry(op.pid, op.parent, op.name), more: entry });
      break;
    }
    case 'renameNode':
    case 'exchangeNodes':
      name(op.pid, op.srcParent, op.srcName, true);
      name(op.dstPid, op.dstParent, op.dstName, true);
      break;
    case 'updateInode':
    case 'setXattr':
    case 'removeXattr':
    case 'releaseOrphan':
    case 'modifySlices':
      plan.keys.push(keys.inode(op.pid, op.ino));
      break;
    default:
      break;
  }
}
