// Random operation sequences from a seed (replayable: the same seed gives the same ops).
// Paths come from a small pool so operations collide often: renames over existing names,
// unlinks of open files, rmdir of non-empty directories, links across directories.
import { constants as C } from 'node:fs';
import type { Op } from './ops.js';

export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const DIRS = ['', 'd1', 'd2', 'd1/s'];
const NAMES = ['a', 'b', 'c', 'd1', 'd2', 's'];

export function randomOps(seed: number, count: number): Op[] {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const int = (n: number) => Math.floor(rnd() * n);
  const path = () => {
    const dir = pick(DIRS);
    const name = pick(NAMES);
    return dir ? `${dir}/${name}` : name;
  };
  const data = () => (rnd() < 0.15 ? { seed: int(1000) + 1, len: 50_000 + int(300_000) } : { seed: int(1000) + 1, len: int(3000) });
  const ops: Op[] = [{ op: 'mkdir', path: 'd1' }, { op: 'mkdir', path: 'd2' }];
  const slot = () => int(3);
  const gens: Array<[number, () => Op]> = [
    [10, () => ({ op: 'writeFile', path: path(), data: data() })],
    [4, () => ({ op: 'writeFile', path: path(), data: data(), flags: C.O_WRONLY | C.O_APPEND | C.O_CREAT })],
    [6, () => ({ op: 'readFile', path: path() })],
    [6, () => ({ op: 'mkdir', path: path() })],
    [4, () => ({ op: 'rmdir', path: path() })],
    [7, () => ({ op: 'unlink', path: path() })],
    [9, () => ({ op: 'rename', from: path(), to: path() })],
    [4, () => ({ op: 'link', from: path(), to: path() })],
    [3, () => ({ op: 'symlink', target: pick(NAMES), path: path() })],
    [2, () => ({ op: 'readlink', path: path() })],
    [4, () => ({ op: 'truncate', path: path(), size: int(5000) })],
    [6, () => ({ op: 'stat', path: path() })],
    [4, () => ({ op: 'readdir', path: pick(DIRS) || '.' })],
    [3, () => ({ op: 'chmod', path: path(), mode: pick([0o600, 0o644, 0o755, 0o700]) })],
    [2, () => ({ op: 'utimes', path: path(), atime: int(1e9), mtime: int(1e9) })],
    [2, () => ({ op: 'setxattr', path: path(), name: pick(['user.x', 'user.y']), value: int(65536).toString(16).padStart(4, '0'), flags: pick([0, 0, 1, 2]) })],
    [2, () => ({ op: 'getxattr', path: path(), name: pick(['user.x', 'user.y']) })],
    [5, () => ({ op: 'open', fd: slot(), path: path(), flags: pick([C.O_RDWR, C.O_RDWR | C.O_CREAT, C.O_RDONLY, C.O_WRONLY | C.O_APPEND]) })],
    [5, () => ({ op: 'write', fd: slot(), data: data(), position: int(10_000) })],
    [4, () => ({ op: 'read', fd: slot(), length: 1 + int(20_000), position: int(10_000) })],
    [2, () => ({ op: 'ftruncate', fd: slot(), size: int(8000) })],
    [2, () => ({ op: 'fstat', fd: slot() })],
    [4, () => ({ op: 'close', fd: slot() })],
  ];
  const total = gens.reduce((s, [w]) => s + w, 0);
  while (ops.length < count) {
    let r = rnd() * total;
    for (const [w, gen] of gens) {
      if ((r -= w) < 0) {
        ops.push(gen());
        break;
      }
    }
    if (ops.length % 50 === 0) ops.push({ op: 'tree' });
  }
  ops.push({ op: 'close', fd: 0 }, { op: 'close', fd: 1 }, { op: 'close', fd: 2 }, { op: 'tree' });
  return ops;
}
