// The simulator's key-value state machine: put, get, compare-and-set. Durable across crashes
// (the simulated disk), with the applied index stored with the data as StateMachine requires.
import { applyConfChange, decodeConfChange } from '../core/confchange.js';
import { type ConfState, type Entry, EntryType } from '../core/types.js';

export type KvCommand = { op: 'put'; key: string; value: string } | { op: 'cas'; key: string; expected: string | null; value: string };

export function encodeKv(c: KvCommand): Buffer {
  return Buffer.from(c.op === 'put' ? `p\u0000${c.key}\u0000${c.value}` : `c\u0000${c.key}\u0000${c.value}\u0000${c.expected ?? '\u0001'}`);
}

export function decodeKv(b: Buffer): KvCommand {
  const parts = b.toString().split('\u0000');
  if (parts[0] === 'p') return { op: 'put', key: parts[1]!, value: parts[2]! };
  return { op: 'cas', key: parts[1]!, value: parts[2]!, expected: parts[3] === '\u0001' ? null : parts[3]! };
}

export interface KvSnapshotData {
  index: number;
  term: number;
  conf: ConfState;
  entries: Array<[string, string]>;
}

export class SimKvStore {
  readonly data = new Map<string, string>();
  applied = 0;
  appliedTerm = 0;
  /** Membership as of `applied` (what a snapshot taken now must carry). */
  conf: ConfState;

  constructor(conf: ConfState) {
    this.conf = conf;
  }

  /** Applies one committed entry; returns the command's result (cas: whether it swapped). */
  apply(e: Entry): boolean | null {
    if (e.index <= this.applied) throw new Error(`entry ${e.index} applied twice (applied ${this.applied})`);
    this.applied = e.index;
    this.appliedTerm = e.term;
    if (e.type === EntryType.ConfChange) {
      this.conf = applyConfChange(this.conf, decodeConfChange(e.data));
      return null;
    }
    if (e.data.length === 0) return null;
    const c = decodeKv(e.data);
    if (c.op === 'put') {
      this.data.set(c.key, c.value);
      return true;
    }
    const cur = this.data.get(c.key) ?? null;
    if (cur !== c.expected) return false;
    this.data.set(c.key, c.value);
    return true;
  }

  snapshot(): KvSnapshotData {
    return { index: this.applied, term: this.appliedTerm, conf: this.conf, entries: [...this.data.entries()] };
  }

  restore(s: KvSnapshotData): void {
    this.data.clear();
    for (const [k, v] of s.entries) this.data.set(k, v);
    this.applied = s.index;
    this.appliedTerm = s.term;
    this.conf = s.conf;
  }
}
