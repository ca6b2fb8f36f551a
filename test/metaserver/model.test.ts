// Random operation sequences (seeded, so a failure replays) against RemoteMetaClient and a
// reference model of POSIX namespace semantics; every result and, periodically, the whole
// tree (names, types, nlink) must agree. Partitions are small and spread over two
// copysets, so renames and links cross partitions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RemoteMetaClient } from '../../metaserver/client.js';
import { S_IFDIR, S_IFMT, S_IFREG } from '../../metaserver/meta-client.js';
import { TierfsError } from '../../common/status.js';
import { startSoloMetaServer } from './fixture.js';

interface Node {
  dir: boolean;
  children: Map<string, number>;
  nlink: number;
}

/** mulberry32: small, seedable. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Model {
  readonly nodes = new Map<number, Node>([[1, { dir: true, children: new Map(), nlink: 2 }]]);
  private next = 2;

  dirs(): number[] {
    return [...this.nodes].filter(([, n]) => n.dir).map(([i]) => i);
  }
  files(): number[] {
    return [...this.nodes].filter(([, n]) => !n.dir).map(([i]) => i);
  }
  private inside(dir: number, ancestor: number): boolean {
    // Walks up through the (unique) parent of each directory.
    for (let cur = dir; ; ) {
      if (cur === ancestor) return true;
      if (cur === 1) return false;
      cur = [...this.nodes].find(([, n]) => n.dir && [...n.children.values()].includes(cur))![0];
    }
  }
  create(parent: number, name: string, dir: boolean): string | number {
    const p = this.nodes.get(parent)!;
    if (p.children.has(name)) return 'EXISTS';
    const ino = this.next++;
    this.nodes.set(ino, { dir, children: new Map(), nlink: dir ? 2 : 1 });
    p.children.set(name, ino);
    if (dir) p.nlink++;
    return ino;
  }
  link(ino: number, parent: number, name: string): string {
    const p = this.nodes.get(parent)!;
    if (p.children.has(name)) return 'EXISTS';
    p.children.set(name, ino);
    this.nodes.get(ino)!.nlink++;
    return 'OK';
  }
  unlink(parent: number, name: string): string {
    const p = this.nodes.get(parent)!;
    const ino = p.children.get(name);
    if (ino === undefined) return 'NOT_FOUND';
    const n = this.nodes.get(ino)!;
    if (n.dir) return 'IS_DIR';
    p.children.delete(name);
    if (--n.nlink === 0) this.nodes.delete(ino);
    return 'OK';
  }
  rmdir(parent: number, name: string): string {
    const p = this.nodes.get(parent)!;
    const ino = p.children.get(name);
    if (ino === undefined) return 'NOT_FOUND';
    const n = this.nodes.get(ino)!;
    if (!n.dir) return 'NOT_DIR';
    if (n.children.size > 0) return 'NOT_EMPTY';
    p.children.delete(name);
    p.nlink--;
    this.nodes.delete(ino);
    return 'OK';
  }
  rename(sp: number, sn: string, dp: number, dn: string): string {
    const s = this.nodes.get(sp)!;
    const d = this.nodes.get(dp)!;
    const ino = s.children.get(sn);
    if (ino === undefined) return 'NOT_FOUND';
    if (sp === dp && sn === dn) return 'OK';
    const src = this.nodes.get(ino)!;
    const old = d.children.get(dn);
    if (old !== undefined) {
      if (old === ino) return 'OK';
      const dst = this.nodes.get(old)!;
      if (src.dir && !dst.dir) return 'NOT_DIR';
      if (!src.dir && dst.dir) return 'IS_DIR';
      if (dst.dir && dst.children.size > 0) return 'NOT_EMPTY';
    }
    if (src.dir && sp !== dp && this.inside(dp, ino)) return 'INVALID_ARGUMENT';
    s.children.delete(sn);
    if (old !== undefined) {
      const dst = this.nodes.get(old)!;
      if (dst.dir) {
        d.nlink--;
        this.nodes.delete(old);
      } else if (--dst.nlink === 0) {
        this.nodes.delete(old);
      }
    }
    d.children.set(dn, ino);
    if (src.dir && sp !== dp) {
      s.nlink--;
      d.nlink++;
    }
    return 'OK';
  }
}

const codeOf = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
    return 'OK';
  } catch (err) {
    if (err instanceof TierfsError) return err.code;
    throw err;
  }
};

async function compareTree(c: RemoteMetaClient, model: Model, real: Map<number, number>): Promise<void> {
  for (const [mino, node] of model.nodes) {
    const ino = real.get(mino)!;
    const inode = await c.getInode(ino);
    assert.equal(inode.nlink, node.nlink, `nlink of model inode ${mino} (real ${ino})`);
    assert.equal((inode.mode & S_IFMT) === S_IFDIR, node.dir);
    if (!node.dir) continue;
    const listed = await c.listDentries(ino, '', 0);
    const expected = [...node.children].map(([name, m]) => `${name}:${real.get(m)}`).sort();
    assert.deepEqual(listed.map((d) => `${d.name}:${d.ino}`).sort(), expected, `entries of model dir ${mino}`);
  }
}

for (const seed of [1, 2]) {
  test(`random namespace operations agree with the model (seed ${seed})`, async () => {
    const ms = await startSoloMetaServer();
    const c = new RemoteMetaClient({ fsId: 1, mds: ms.directory });
    try {
      await ms.addPartition(1, 1, 1, 1000);
      await ms.addPartition(2, 2, 1001, 2000);
      await ms.addPartition(1, 3, 2001, 3000);
      const rand = rng(seed);
      const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
      const names = ['a', 'b', 'c', 'd', 'e'];
      const model = new Model();
      const real = new Map<number, number>([[1, 1]]);
      const file = { mode: S_IFREG | 0o644, uid: 0, gid: 0, exclusive: true };
      const dir = { mode: S_IFDIR | 0o755, uid: 0, gid: 0, exclusive: true };
      for (let step = 0; step < 250; step++) {
        const kind = pick(['create', 'create', 'mkdir', 'mkdir', 'unlink', 'rmdir', 'rename', 'rename', 'rename', 'link']);
        const p = pick(model.dirs());
        const name = pick(names);
        const what = `step ${step} ${kind}`;
        if (kind === 'create' || kind === 'mkdir') {
          const m = model.create(p, name, kind === 'mkdir');
          try {
            const inode = await c.createNode(real.get(p)!, name, kind === 'mkdir' ? dir : file);
            assert.equal(typeof m, 'number', what);
            real.set(m as number, inode.ino);
          } catch (err) {
            assert.equal((err as TierfsError).code, m, what);
          }
        } else if (kind === 'unlink') {
          assert.equal(await codeOf(c.unlink(real.get(p)!, name)), model.unlink(p, name), what);
        } else if (kind === 'rmdir') {
          assert.equal(await codeOf(c.rmdir(real.get(p)!, name)), model.rmdir(p, name), what);
        } else if (kind === 'link') {
          const files = model.files();
          if (files.length === 0) continue;
          const f = pick(files);
          assert.equal(await codeOf(c.link(real.get(f)!, real.get(p)!, name)), model.link(f, p, name), what);
        } else {
          const dp = pick(model.dirs());
          const dn = pick(names);
          assert.equal(await codeOf(c.rename(real.get(p)!, name, real.get(dp)!, dn)), model.rename(p, name, dp, dn), `${what} ${p}/${name} -> ${dp}/${dn}`);
        }
        if (step % 50 === 49) await compareTree(c, model, real);
      }
      await compareTree(c, model, real);
    } finally {
      await c.close();
      await ms.close();
    }
  });
}
