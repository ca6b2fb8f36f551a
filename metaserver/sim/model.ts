// The reference model of the namespace the metaserver simulator checks against: dentries
// (parent, name) -> inode, each file's size and nlink, and the next inode number a create
// hands out. Each operation's expected output is a short string compared with what the
// metaserver answered. Two families: the POSIX operations as one entry each (removeNode,
// linkNode, renameNode: names and nlink together) and the older per-record steps
// (deleteDentry, createDentry, commitRename: names only) still used across copysets.
import type { Model } from '../../raft/sim/linearizability.js';

export type NsOp =
  | { kind: 'create'; parent: number; name: string }
  | { kind: 'lookup'; parent: number; name: string }
  | { kind: 'unlink'; parent: number; name: string; releaseIno: number }
  | { kind: 'link'; ino: number; parent: number; name: string }
  | { kind: 'rename'; srcParent: number; srcName: string; dstParent: number; dstName: string; releaseIno: number }
  | { kind: 'deleteDentry'; parent: number; name: string }
  | { kind: 'createDentry'; ino: number; parent: number; name: string }
  | { kind: 'commitRename'; srcParent: number; srcName: string; ino: number; dstParent: number; dstName: string; replacedIno: number }
  | { kind: 'setattr'; ino: number; size: number }
  | { kind: 'getattr'; ino: number }
  | { kind: 'readdir'; parent: number };

export const isRead = (op: NsOp): boolean => op.kind === 'lookup' || op.kind === 'getattr' || op.kind === 'readdir';

export interface NsInode {
  size: number;
  nlink: number;
}

export interface NsState {
  dentries: Map<string, number>;
  inodes: Map<number, NsInode>;
  nextIno: number;
}

const dk = (parent: number, name: string): string => `${parent}/${name}`;

function change(s: NsState, f: (n: NsState) => void): NsState {
  const n = { dentries: new Map(s.dentries), inodes: new Map(s.inodes), nextIno: s.nextIno };
  f(n);
  return n;
}

/** One link less (the inode lives in this copyset in the simulator, so it is always updated). */
function dropLink(n: NsState, ino: number): number {
  const i = n.inodes.get(ino);
  if (!i) return 0;
  n.inodes.set(ino, { ...i, nlink: i.nlink - 1 });
  return i.nlink - 1;
}

export function namespaceModel(init: NsState): Model<NsState, NsOp> {
  return {
    init,
    key: (s) => `${s.nextIno}|${[...s.dentries].sort().join(',')}|${[...s.inodes].sort((a, b) => a[0] - b[0]).map(([i, x]) => `${i}:${x.size}:${x.nlink}`).join(',')}`,
    step(s, op) {
      switch (op.kind) {
        case 'create': {
          if (s.dentries.has(dk(op.parent, op.name))) return { output: 'EXISTS', next: s };
          const ino = s.nextIno;
          const next = change(s, (n) => {
            n.dentries.set(dk(op.parent, op.name), ino);
            n.inodes.set(ino, { size: 0, nlink: 1 });
            n.nextIno++;
          });
          return { output: `OK:${ino}`, next };
        }
        case 'lookup': {
          const ino = s.dentries.get(dk(op.parent, op.name));
          return { output: ino === undefined ? 'NOT_FOUND' : `OK:${ino}`, next: s };
        }
        case 'unlink': {
          const ino = s.dentries.get(dk(op.parent, op.name));
          if (ino === undefined) return { output: 'NOT_FOUND', next: s };
          let nlink = 0;
          const next = change(s, (n) => {
            n.dentries.delete(dk(op.parent, op.name));
            nlink = dropLink(n, ino);
          });
          return { output: `OK:${ino}:${nlink}`, next };
        }
        case 'link': {
          const inode = s.inodes.get(op.ino);
          if (!inode) return { output: 'NOT_FOUND', next: s };
          if (s.dentries.has(dk(op.parent, op.name))) return { output: 'EXISTS', next: s };
          const next = change(s, (n) => {
            n.dentries.set(dk(op.parent, op.name), op.ino);
            n.inodes.set(op.ino, { ...inode, nlink: inode.nlink + 1 });
          });
          return { output: `OK:${inode.nlink + 1}`, next };
        }
        case 'rename': {
          const src = s.dentries.get(dk(op.srcParent, op.srcName));
          if (src === undefined) return { output: 'NOT_FOUND', next: s };
          const dst = s.dentries.get(dk(op.dstParent, op.dstName));
          if ((op.srcParent === op.dstParent && op.srcName === op.dstName) || dst === src) return { output: `OK:${src}:0:0`, next: s };
          let nlink = 0;
          const next = change(s, (n) => {
            n.dentries.delete(dk(op.srcParent, op.srcName));
            n.dentries.set(dk(op.dstParent, op.dstName), src);
            if (dst !== undefined) nlink = dropLink(n, dst);
          });
          return { output: `OK:${src}:${dst ?? 0}:${nlink}`, next };
        }
        case 'deleteDentry': {
          const ino = s.dentries.get(dk(op.parent, op.name));
          if (ino === undefined) return { output: 'NOT_FOUND', next: s };
          return { output: `OK:${ino}`, next: change(s, (n) => n.dentries.delete(dk(op.parent, op.name))) };
        }
        case 'createDentry': {
          const cur = s.dentries.get(dk(op.parent, op.name));
          if (cur !== undefined) return { output: cur === op.ino ? 'OK' : 'EXISTS', next: s };
          return { output: 'OK', next: change(s, (n) => n.dentries.set(dk(op.parent, op.name), op.ino)) };
        }
        case 'commitRename': {
          const src = s.dentries.get(dk(op.srcParent, op.srcName));
          const dst = s.dentries.get(dk(op.dstParent, op.dstName)) ?? 0;
          if (src !== op.ino || dst !== op.replacedIno) return { output: 'TX_CONFLICT', next: s };
          const next = change(s, (n) => {
            n.dentries.delete(dk(op.srcParent, op.srcName));
            n.dentries.set(dk(op.dstParent, op.dstName), op.ino);
          });
          return { output: 'OK', next };
        }
        case 'setattr': {
          const inode = s.inodes.get(op.ino);
          if (!inode) return { output: 'NOT_FOUND', next: s };
          return { output: 'OK', next: change(s, (n) => n.inodes.set(op.ino, { ...inode, size: op.size })) };
        }
        case 'getattr': {
          const inode = s.inodes.get(op.ino);
          return { output: inode ? `OK:${inode.size}:${inode.nlink}` : 'NOT_FOUND', next: s };
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
