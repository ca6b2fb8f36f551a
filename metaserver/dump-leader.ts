// The leader-following loop both dump RPCs (FenceDump, DumpCopyset) go through: try the known
// leader first, jump to a NOT_LEADER hint at once, otherwise walk the copyset's peers with a
// pause while one is elected, until a deadline.
import { sleep } from '../common/grpc.js';
import { StatusCode, TierfsError } from '../common/status.js';
import type { CopysetAddress } from './dump-fence.js';

/**
 * Runs `attempt` at the copyset's leader. `attempt` owns its client (closes it on failure,
 * keeps it if its result still needs it); an error it throws moves on to the next address.
 */
export async function atCopysetLeader<T>(c: CopysetAddress, what: string, deadlineMs: number, attempt: (address: string) => Promise<T>): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  let order = [...new Set([c.leader, ...c.peers].filter((a) => a !== ''))];
  let last = `copyset ${c.pool}.${c.copyset} has no metaserver`;
  for (let next = 0; order.length > 0 && Date.now() < deadline; ) {
    const address = order[next % order.length]!;
    try {
      return await attempt(address);
    } catch (err) {
      last = `${address}: ${err instanceof Error ? err.message : String(err)}`;
      const hint = err instanceof TierfsError && err.code === StatusCode.NOT_LEADER ? err.leaderHint : '';
      if (hint && hint !== address) {
        order = [hint, ...order.filter((a) => a !== hint)];
        next = 0;
        await sleep(50);
      } else {
        next++; // no leader here (or it is electing one): the next peer, after a pause
        await sleep(300);
      }
    }
  }
  throw new TierfsError(StatusCode.UNAVAILABLE, `${what} of copyset ${c.pool}.${c.copyset}: no leader answered within ${deadlineMs / 1000} s (${last})`);
}
