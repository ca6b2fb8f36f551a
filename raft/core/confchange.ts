// Single-server membership changes: add a learner, promote a learner, remove a server.
import { type ConfChange, ConfChangeType, type ConfState, RaftInvariantError } from './types.js';

export function applyConfChange(conf: ConfState, cc: ConfChange): ConfState {
  const voters = conf.voters.filter((v) => v !== cc.node);
  const learners = conf.learners.filter((v) => v !== cc.node);
  switch (cc.type) {
    case ConfChangeType.AddLearner:
      if (conf.voters.includes(cc.node)) return conf; // already a voter: no demotion by "add"
      learners.push(cc.node);
      break;
    case ConfChangeType.Promote:
      if (!conf.learners.includes(cc.node) && !conf.voters.includes(cc.node)) return conf; // unknown node: no-op
      voters.push(cc.node);
      break;
    case ConfChangeType.Remove:
      break;
    default:
      throw new RaftInvariantError(`unknown conf change type ${String(cc.type)}`);
  }
  voters.sort();
  learners.sort();
  return { voters, learners, epoch: (conf.epoch ?? 0) + 1 };
}

export function encodeConfChange(cc: ConfChange): Buffer {
  const node = Buffer.from(cc.node, 'utf8');
  const b = Buffer.allocUnsafe(1 + node.length);
  b[0] = cc.type;
  node.copy(b, 1);
  return b;
}

export function decodeConfChange(b: Buffer): ConfChange {
  return { type: b[0] as ConfChangeType, node: b.subarray(1).toString('utf8') };
}

export function confEquals(a: ConfState, b: ConfState): boolean {
  return a.voters.join(',') === b.voters.join(',') && a.learners.join(',') === b.learners.join(',');
}

export function isMember(conf: ConfState, id: string): boolean {
  return conf.voters.includes(id) || conf.learners.includes(id);
}
