// Majority math: the commit index a set of voters agrees on, and election outcomes.
import type { NodeId } from './types.js';

export const VoteResult = { Pending: 0, Lost: 1, Won: 2 } as const;
export type VoteResult = (typeof VoteResult)[keyof typeof VoteResult];

/** Largest index acknowledged by a majority of `voters` (missing entries count as 0). */
export function committedIndex(voters: readonly NodeId[], matchOf: (id: NodeId) => number): number {
  const n = voters.length;
  if (n === 0) return Number.MAX_SAFE_INTEGER; // an empty config commits nothing on its own; callers guard
  const matches = new Array<number>(n);
  for (let i = 0; i < n; i++) matches[i] = matchOf(voters[i]!);
  matches.sort((a, b) => b - a);
  return matches[Math.floor(n / 2)]!;
}

/** Outcome of a vote given each voter's answer (true = granted, false = rejected, absent = pending). */
export function voteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.length === 0) return VoteResult.Won;
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  const q = Math.floor(voters.length / 2) + 1;
  if (granted >= q) return VoteResult.Won;
  if (granted + missing >= q) return VoteResult.Pending;
  return VoteResult.Lost;
}

export function quorumSize(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}
