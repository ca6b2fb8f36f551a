// The reference model of the namespace the metaserver simulator checks against: dentries
// (parent, name) -> inode, file sizes, and the next inode number a create hands out. Each
// operation's expected output is a short string compared with what the metaserver answered.
import type { Model } from '../../raft/sim/linearizability.js';

export type NsOp =
  | { kind: 'create'; parent: number; name: string }
  | { kind: 'lookup'; parent: number; name: string }
  | { kind: 'unlink'; parent: number; name: string }
  | { kind: 'link'; ino: number; parent: number; name: string }
  | { kind: 'rename'; srcParent: number; srcName: string; ino: number; dstParent: number; dstName: string; replacedIno: number }
  | { kind: 'setattr'; ino: number; size: number }
  | { kind: 'getattr'; ino: number }
  | { kind: 'readdir'; parent: number };

export const isRead = (op: NsOp): boolean => op.kind === 'lookup' || op.kind === 'getattr' || op.kind === 'readdir';

export interface NsState {
  dentries: Map<string, number>;
  sizes: Map<number, number>;
  nextIno: number;
}

const dk = (parent: number, name: string): string => `${parent}/${name}`;

export function namespaceModel(init: NsState): Model<NsState, NsOp> {
  const with_ = (s: NsState, f: (n: NsState) => void): NsState => {
    const n = { dentries: new Map(s.dentries), sizes: new Map(s.sizes), nextIno: s.nextIno };
    f(n);
    return n;
  };
  return {
    init,
    key: (s) => `${s.nextIno}|${[...s.dentries].sort().join(',')}|${[...s.sizes].sort((a, b) => a[0] - b[0]).join(',')}`,
    step(s, op) {
      switch (op.kind) {
        case 'create': {
          if (s.dentries.has(dk(op.parent, op.name))) return { output: 'EXISTS', next: s };
          const ino = s.nextIno;
          return {
            output: `OK:${ino}`,
            next: with_(s, (n) => {
              n.dentries.set(dk(op.parent, op.name), ino);
              n.sizes.set(ino, 0);
              n.nextIno++;
            }),
          };
        }
        case 'lookup': {
          const ino = s.dentries.get(dk(op.parent, op.name));
          return { output: ino === undefined ? 'NOT_FOUND' : `OK:${ino}`, next: s };
        }
        case 'unlink': {
          const ino = s.dentries.get(dk(op.parent, op.name));
          if (ino === undefined) return { output: 'NOT_FOUND', next: s };
          return { output: `OK:${ino}`, next: with_(s, (n) => n.dentries.delete(dk(op.parent, op.name))) };
        }
        case 'link': {
          const cur = s.dentries.get(dk(op.parent, op.name));
          if (cur !== undefined) return { output: cur === op.ino ? 'OK' : 'EXISTS', next: s };
          return { output: 'OK', next: with_(s, (n) => n.dentries.set(dk(op.parent, op.name), op.ino)) };
        }
        case 'rename': {
          const src = s.dentries.get(dk(op.srcParent, op.srcName));
          const dst = s.dentries.get(dk(op.dstParent, op.dstName)) ?? 0;
          if (src !== op.ino || dst !== op.replacedIno) return { output: 'TX_CONFLICT', next: s };
          return {
            output: 'OK',
            next: with_(s, (n) => {
              n.dentries.delete(dk(op.srcParent, op.srcName));
              n.dentries.set(dk(op.dstParent, op.dstName), op.ino);
            }),
          };
        }
        case 'setattr':
          if (!s.sizes.has(op.ino)) return { output: 'NOT_FOUND', next: s };
          return { output: 'OK', next: with_(s, (n) => n.sizes.set(op.ino, op.size)) };
        case 'getattr': {
          const size = s.sizes.get(op.ino);
          return { output: size === undefined ? 'NOT_FOUND' : `OK:${size}`, next: s };
        }
        case 'readdir': {
          const prefix = `${op.parent}/`;
          const names = [...s.dentries].filter(([k]) => k.startsWith(prefix)).map(([k, ino]) => `${k.slice(prefix.length)}=${ino}`);
          return { output: names.sort().join(','), next: s };
        }
      }
    },
  };
}
