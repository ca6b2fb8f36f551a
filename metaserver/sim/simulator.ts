// The metaserver simulator: the real MetaStateMachine (metaserver/state-machine.ts) behind
// CopysetNode, on the real Raft runtime in the simulated world of raft/sim/cluster.ts
// (crashes losing unsynced writes, partitions, message loss/duplication/reordering, slow and
// failing disks, membership changes). Clients call the copyset as the gRPC service does
// (CopysetNode.write / read with request ids, retried on NOT_LEADER or timeout with the same
// id), and every seed's history is checked for linearizability against a namespace model.
import { StatusCode, TierfsError } from '../../common/status.js';
import { SimCluster, InvariantViolation } from '../../raft/sim/cluster.js';
import { checkModel, type ModelOp } from '../../raft/sim/linearizability.js';
import { Prng } from '../../raft/sim/prng.js';
import { runSimulation } from '../../raft/sim/run.js';
import { TICK_MS } from '../../raft/sim/simulator.js';
import { SimWorld } from '../../raft/sim/world.js';
import type { LogEntryForApply } from '../../raft/runtime/api.js';
import { CopysetNode } from '../copyset-node.js';
import { ROOT_INO, S_IFDIR, S_IFREG } from '../meta-client.js';
import { type InodeRecord, type MetaOp, type OpResult, type RequestIdent, UpdateMask } from '../records.js';
import { MetaStateMachine } from '../state-machine.js';
import { type NsOp, isRead, namespaceModel } from './model.js';

export interface MetaSimOptions {
  clients?: number;
  opsPerClient?: number;
  /** For the checker's own tests: a state machine that acknowledges some unlinks without doing them. */
  brokenStateMachine?: 'drop-unlink';
}

export interface MetaSimResult {
  seed: number;
  ok: boolean;
  error?: string;
  ops: number;
  unknownOps: number;
  ticks: number;
  crashes: number;
  diskFailures: number;
  lostWrites: number;
  partitions: number;
  confChanges: number;
  events: number;
  digest: string;
}

const POOL = 1;
const COPYSET = 1;
const PID = 1;
const DIR = 2; // "d" in the root, made during setup
const NAMES = ['a', 'b', 'c'];

export async function runMetaSeed(seed: number, opts: MetaSimOptions = {}): Promise<MetaSimResult> {
  return runSimulation(new MetaSimulation(seed, opts));
}

/** Acknowledges every third unlink with the dentry it would remove, but keeps the name. */
class ForgetfulStateMachine extends MetaStateMachine {
  private unlinks = 0;
  override async apply(entries: LogEntryForApply[]): Promise<unknown[]> {
    const faked = new Map<number, OpResult>();
    const patched = [];
    for (const [i, e] of entries.entries()) {
      const op = e.data.length > 0 ? (JSON.parse(e.data.toString()) as MetaOp) : null;
      if ((op?.op === 'deleteDentry' || op?.op === 'removeNode') && ++this.unlinks % 3 === 0) {
        const raw = await this.db.get(this.keys.dentry(op.pid, op.parent, op.name));
        if (raw) {
          const dentry = JSON.parse(raw) as { ino: number; type: number };
          const inode = await this.db.get(this.keys.inode(op.pid, dentry.ino));
          faked.set(i, { code: StatusCode.OK, dentry, inode: inode ? { ...(JSON.parse(inode) as InodeRecord), nlink: (JSON.parse(inode) as InodeRecord).nlink - 1 } : undefined });
          patched.push({ ...e, data: Buffer.from(JSON.stringify({ op: 'forgetRenames', before: 0 })) });
          continue;
        }
      }
      patched.push(e);
    }
    const results = await super.apply(patched);
    for (const [i, r] of faked) results[i] = r;
    return results;
  }
}

interface Client {
  id: string;
  seq: number;
  done: number;
  target: string;
  /** Inodes of files this client has seen (setattr, getattr and link pick from them). */
  inos: number[];
}

class MetaSimulation {
  private readonly rng: Prng;
  private readonly world: SimWorld;
  private readonly cluster: SimCluster;
  private readonly sms = new Map<string, MetaStateMachine>();
  private readonly history: Array<ModelOp<NsOp>> = [];
  private readonly clients: Client[] = [];
  private readonly opsPerClient: number;
  private faulting = false;
  private hash = 0;
  /** This seed uses the per-record steps (deleteDentry, createDentry, commitRename) instead of the one-entry POSIX operations. */
  private readonly legacy: boolean;

  constructor(
    private readonly seed: number,
    opts: MetaSimOptions,
  ) {
    this.rng = new Prng(seed);
    this.world = new SimWorld(this.rng);
    this.opsPerClient = opts.opsPerClient ?? 30;
    const rng = this.rng;
    this.legacy = rng.chance(0.3);
    this.cluster = new SimCluster(
      this.world,
      rng,
      {
        size: rng.chance(0.6) ? 3 : 5,
        tickMs: TICK_MS,
        electionTicks: 10,
        heartbeatTicks: 2,
        leaseRead: rng.chance(0.7),
        checkQuorum: rng.chance(0.8),
        snapshotThreshold: 8 + rng.int(40),
        maxInflightMsgs: 1 + rng.int(8),
        maxServers: 8,
      },
      {
        open: async (id, disk) => {
          const sm = await (opts.brokenStateMachine ? new ForgetfulStateMachine(disk, POOL, COPYSET) : new MetaStateMachine(disk, POOL, COPYSET)).load();
          this.sms.set(id, sm);
          return sm;
        },
        // Replicas agree on content; the applied index may differ by trailing no-ops.
        digest: (disk) => JSON.stringify(disk.dump().filter(([k]) => !k.endsWith('/~applied'))),
      },
    );
    for (let c = 0; c < (opts.clients ?? 3); c++) this.clients.push({ id: `c${c}`, seq: 0, done: 0, target: rng.pick(this.cluster.ids()), inos: [] });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => this.world.after(ms, r));
  }

  /** The copyset as a service handler sees it on `serverId`, or null when that server is down. */
  private copyset(serverId: string): CopysetNode | null {
    const s = this.cluster.servers.get(serverId);
    const sm = this.sms.get(serverId);
    if (!s?.alive || !s.group || !sm) return null;
    return new CopysetNode(POOL, COPYSET, s.group, sm);
  }

  async run(): Promise<void> {
    const check = () => this.cluster.check();
    let setupDone = false;
    void this.setup().then(() => {
      setupDone = true;
      this.faulting = true;
      this.world.after(10 * TICK_MS + this.rng.int(20 * TICK_MS), () => this.fault());
      for (const [i, cl] of this.clients.entries()) void this.clientLoop(i, cl);
    });
    const allDone = () => setupDone && this.clients.every((c) => c.done >= this.opsPerClient);
    if (!(await this.world.run(6000 * TICK_MS, allDone, check))) {
      throw new InvariantViolation(`clients did not finish (liveness): setup ${setupDone ? 'done' : 'not done'}; ${this.cluster.describe()}`);
    }
    this.faulting = false;
    await this.cluster.healAndConverge(TICK_MS);
    const model = namespaceModel({ dentries: new Map([[`${ROOT_INO}/d`, DIR]]), inodes: new Map(), nextIno: DIR + 1 });
    const lin = checkModel(this.history, model);
    if (!lin.ok) throw new InvariantViolation(`metaserver history: ${lin.reason}`);
  }

  private fault(): void {
    if (!this.faulting) return;
    this.cluster.injectFault();
    this.world.after(10 * TICK_MS + this.rng.int(40 * TICK_MS), () => this.fault());
  }

  /** The partition (root inode 1) and directory "d" (inode 2), before faults and clients start. */
  private async setup(): Promise<void> {
    const admin: Client = { id: 'admin', seq: 0, done: 0, target: this.rng.pick(this.cluster.ids()), inos: [] };
    for (;;) {
      const r = await this.attempt(admin, (n) => n.write({ op: 'createPartition', partition: { fsId: 1, poolId: POOL, copysetId: COPYSET, partitionId: PID, start: ROOT_INO, end: 1_000_000 }, now: 0 }), 200);
      if (r?.code === StatusCode.OK) break;
    }
    const rid = this.rid(admin);
    for (;;) {
      const r = await this.attempt(admin, (n) => n.write({ op: 'createNode', pid: PID, inodePid: PID, rid, parent: ROOT_INO, name: 'd', mode: S_IFDIR | 0o755, uid: 0, gid: 0, rdev: 0, symlink: '', now: this.world.now }), 200);
      if (r?.code === StatusCode.OK) {
        if (r.inode?.ino !== DIR) throw new InvariantViolation(`setup: "d" got inode ${r.inode?.ino}, expected ${DIR}`);
        return;
      }
    }
  }

  private rid(cl: Client): RequestIdent {
    return { clientId: cl.id, seq: ++cl.seq, lowSeq: 0 };
  }

  /**
   * One try at the current target: NOT_LEADER moves the client to the hinted leader; a timeout
   * (a crashed or cut-off server never answers) moves it to a random server. Null: try again.
   */
  private async attempt<T>(cl: Client, call: (n: CopysetNode) => Promise<T>, timeoutMs: number): Promise<T | null> {
    const node = this.copyset(cl.target);
    const hop = (hint: string | null) => {
      cl.target = hint && this.cluster.servers.has(hint) && this.rng.chance(0.8) ? hint : this.rng.pick(this.cluster.ids());
    };
    if (!node) {
      hop(null);
      await this.sleep(1 + this.rng.int(TICK_MS));
      return null;
    }
    let timer = false;
    const timeout = this.sleep(timeoutMs).then(() => {
      timer = true;
      return null;
    });
    try {
      const r = await Promise.race([call(node), timeout]);
      if (timer) hop(null);
      return r;
    } catch (e) {
      if (e instanceof TierfsError && (e.code === StatusCode.NOT_FOUND || e.code === StatusCode.TX_CONFLICT)) throw e; // an answer
      hop(e instanceof TierfsError && e.code === StatusCode.NOT_LEADER ? e.leaderHint || null : null);
      await this.sleep(1 + this.rng.int(TICK_MS));
      return null;
    }
  }

  private pickOp(cl: Client): NsOp {
    const rng = this.rng;
    const parent = rng.chance(0.7) ? ROOT_INO : DIR;
    const name = rng.pick(NAMES);
    const ino = cl.inos.length > 0 ? rng.pick(cl.inos) : 0;
    const other = rng.chance(0.7) ? parent : parent === ROOT_INO ? DIR : ROOT_INO;
    const release = rng.chance(0.5) ? ino : 0;
    const r = rng.next();
    if (r < 0.2) return { kind: 'create', parent, name };
    if (r < 0.35) return { kind: 'lookup', parent, name };
    if (r < 0.47) return this.legacy ? { kind: 'deleteDentry', parent, name } : { kind: 'unlink', parent, name, releaseIno: release };
    if (r < 0.55 && ino) return this.legacy ? { kind: 'createDentry', ino, parent, name } : { kind: 'link', ino, parent, name };
    if (r < 0.7) {
      const dstName = rng.pick(NAMES);
      if (!this.legacy) return { kind: 'rename', srcParent: parent, srcName: name, dstParent: other, dstName, releaseIno: release };
      // The client renames what it believes is there, over what it believes is at the target.
      return { kind: 'commitRename', srcParent: parent, srcName: name, ino, dstParent: other, dstName, replacedIno: rng.chance(0.5) ? 0 : rng.pick([0, ...cl.inos]) };
    }
    if (r < 0.8 && ino) return { kind: 'setattr', ino, size: rng.int(1000) };
    if (r < 0.88 && ino) return { kind: 'getattr', ino };
    return { kind: 'readdir', parent };
  }

  /** The metaserver call for an operation, as service.ts makes it; returns the observed output. */
  private exec(node: CopysetNode, op: NsOp, rid: RequestIdent): Promise<string> {
    const now = this.world.now;
    const ok = (r: OpResult, detail: () => string) => (r.code === StatusCode.OK ? `OK${detail()}` : r.code);
    switch (op.kind) {
      case 'create':
        return node
          .write({ op: 'createNode', pid: PID, inodePid: PID, rid, parent: op.parent, name: op.name, mode: S_IFREG | 0o644, uid: 0, gid: 0, rdev: 0, symlink: '', now })
          .then((r) => ok(r, () => `:${r.inode!.ino}`));
      case 'unlink':
        return node
          .write({ op: 'removeNode', pid: PID, rid, parent: op.parent, name: op.name, dir: false, expectIno: 0, releaseIno: op.releaseIno, now })
          .then((r) => ok(r, () => `:${r.dentry!.ino}:${r.inode!.nlink}`));
      case 'link':
        return node.write({ op: 'linkNode', pid: PID, rid, parent: op.parent, name: op.name, ino: op.ino, now }).then((r) => ok(r, () => `:${r.inode!.nlink}`));
      case 'rename':
        return node
          .write({ op: 'renameNode', pid: PID, dstPid: PID, rid, srcParent: op.srcParent, srcName: op.srcName, dstParent: op.dstParent, dstName: op.dstName, ancestryChecked: true, releaseIno: op.releaseIno, now })
          .then((r) => ok(r, () => `:${r.renamed!.ino}:${r.renamed!.replacedIno}:${r.renamed!.replacedNlink}`));
      case 'deleteDentry':
        return node.write({ op: 'deleteDentry', pid: PID, rid, parent: op.parent, name: op.name, expectIno: 0, now }).then((r) => ok(r, () => `:${r.dentry!.ino}`));
      case 'createDentry':
        return node.write({ op: 'createDentry', pid: PID, rid, parent: op.parent, name: op.name, ino: op.ino, type: S_IFREG, now }).then((r) => ok(r, () => ''));
      case 'commitRename':
        return node
          .write({
            op: 'commitRename', pid: PID, rid, now,
            tx: {
              txId: `${rid.clientId}.${rid.seq}`, srcPool: POOL, srcCopyset: COPYSET, srcPartition: PID, srcFs: 1, srcPeers: [], srcParent: op.srcParent, srcName: op.srcName,
              ino: op.ino, type: S_IFREG, dstPool: POOL, dstCopyset: COPYSET, dstPartition: PID, dstParent: op.dstParent, dstName: op.dstName,
              replacedIno: op.replacedIno, replacedType: op.replacedIno ? S_IFREG : 0,
            },
          })
          .then((r) => ok(r, () => ''));
      case 'setattr':
        return node
          .write({ op: 'updateInode', pid: PID, rid, ino: op.ino, now, changes: { mask: UpdateMask.SIZE, mode: 0, uid: 0, gid: 0, size: op.size, atimeMs: 0, mtimeMs: 0, ctimeMs: 0, nlinkDelta: 0, addParent: 0, removeParent: 0, touchCtime: true } })
          .then((r) => ok(r, () => ''));
      case 'lookup':
        return node.read((r) => r.dentry(PID, op.parent, op.name)).then((d) => `OK:${d.ino}`);
      case 'getattr':
        return node.read((r) => r.inode(PID, op.ino)).then((i) => `OK:${i.size}:${i.nlink}`);
      case 'readdir':
        return node.read((r) => r.listDentries(PID, op.parent, '', 0)).then((ds) => ds.map((d) => `${d.name}=${d.ino}`).sort().join(','));
    }
  }

  private async clientLoop(i: number, cl: Client): Promise<void> {
    await this.sleep(this.rng.int(5 * TICK_MS));
    while (cl.done < this.opsPerClient) {
      const op = this.pickOp(cl);
      const rid = this.rid(cl);
      const h: ModelOp<NsOp> = { op, call: this.world.now, ret: Infinity, output: undefined };
      const giveUp = this.world.now + 60 * TICK_MS;
      while (this.world.now < giveUp) {
        let out: string | null;
        try {
          out = await this.attempt(cl, (n) => this.exec(n, op, rid), 20 * TICK_MS);
        } catch (e) {
          out = (e as TierfsError).code; // NOT_FOUND, TX_CONFLICT from a read
        }
        if (out !== null) {
          h.ret = this.world.now;
          h.output = out;
          break;
        }
      }
      // An unanswered read had no effect: leave it out. An unanswered write may have happened.
      if (h.output !== undefined || !isRead(op)) this.history.push(h);
      if (h.output?.startsWith('OK:') && (op.kind === 'create' || op.kind === 'unlink' || op.kind === 'lookup')) {
        const ino = Number(h.output.split(':')[1]);
        if (ino !== DIR && !cl.inos.includes(ino)) cl.inos.push(ino);
      }
      if (op.kind === 'readdir' && h.output) {
        for (const part of h.output.split(',').filter(Boolean)) {
          const ino = Number(part.split('=')[1]);
          if (ino !== DIR && !cl.inos.includes(ino)) cl.inos.push(ino);
        }
      }
      this.hash = (Math.imul(this.hash ^ (this.world.now + i * 7919), 16777619) + (h.output === undefined ? 1 : h.output.length)) >>> 0;
      cl.done++;
      await this.sleep(this.rng.int(3 * TICK_MS));
    }
  }

  result(ok: boolean, error?: string): MetaSimResult {
    const st = this.cluster.stats;
    return {
      seed: this.seed,
      ok,
      error,
      ops: this.history.length,
      unknownOps: this.history.filter((h) => h.output === undefined).length,
      ticks: Math.floor(this.world.now / TICK_MS),
      crashes: st.crashes,
      diskFailures: st.diskFailures,
      lostWrites: this.cluster.lostWrites(),
      partitions: st.partitions,
      confChanges: st.confChanges,
      events: this.world.events,
      digest: `${this.hash.toString(16)}:${this.world.now}:${st.messages}:${this.history.length}:${this.world.events}`,
    };
  }
}
