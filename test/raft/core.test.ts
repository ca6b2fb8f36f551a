import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RawNode } from '../../raft/core/rawnode.js';
import { MemoryStorage } from '../../raft/core/storage.js';
import { encodeConfChange } from '../../raft/core/confchange.js';
import { ConfChangeType, type Entry, EntryType, type Message, MsgType, type ReadState, StateRole, emptyMessage } from '../../raft/core/types.js';
import { committedIndex } from '../../raft/core/quorum.js';

/** A few RawNodes over a perfect in-memory network; `drop` filters messages. */
class Net {
  nodes = new Map<string, { node: RawNode; storage: MemoryStorage; applied: Entry[]; reads: ReadState[] }>();
  drop: (m: Message) => boolean = () => false;
  constructor(ids: string[], logs: Record<string, Array<[number, number]>> = {}, term = 0, opts: { checkQuorum?: boolean; leaseRead?: boolean } = {}) {
    for (const id of ids) {
      const storage = new MemoryStorage({ voters: ids, learners: [] });
      const ents = (logs[id] ?? []).map(([index, t]) => ({ index, term: t, type: EntryType.Normal, data: Buffer.from(`${index}.${t}`) }));
      // Without a given log, start like the runtime: a snapshot at index 1 holding the membership.
      if (ents.length === 0) storage.applySnapshot({ index: 1, term: 1, conf: { voters: ids, learners: [] } });
      storage.append(ents);
      storage.setHardState({ term: Math.max(term, ents.length === 0 ? 1 : 0), vote: '', commit: ents.length === 0 ? 1 : 0 });
      this.add(id, storage, opts);
    }
  }
  add(id: string, storage: MemoryStorage, opts: { checkQuorum?: boolean; leaseRead?: boolean } = {}): void {
    let seed = id.charCodeAt(id.length - 1);
    // checkQuorum off by default: its vote lease would make hand-driven elections wait for ticks.
    const node = new RawNode({
      id,
      storage,
      electionTicks: 10,
      heartbeatTicks: 1,
      checkQuorum: opts.checkQuorum ?? false,
      leaseRead: opts.leaseRead ?? false,
      random: () => ((seed = (seed * 48271) % 2147483647) % 1000) / 1000,
    });
    this.nodes.set(id, { node, storage, applied: [], reads: [] });
  }
  n(id: string): RawNode {
    return this.nodes.get(id)!.node;
  }
  /** Processes Readies and delivers messages until the network is quiet. */
  settle(max = 10_000): void {
    for (let round = 0; round < max; round++) {
      const out: Message[] = [];
      for (const s of this.nodes.values()) {
        while (s.node.hasReady()) {
          const rd = s.node.ready();
          if (rd.snapshot) s.storage.applySnapshot(rd.snapshot.meta);
          s.storage.append(rd.entries);
          if (rd.hardState) s.storage.setHardState(rd.hardState);
          s.applied.push(...rd.committedEntries);
          s.reads.push(...rd.readStates);
          out.push(...rd.messages);
          s.node.advance(rd);
        }
      }
      if (out.length === 0) return;
      for (const m of out) if (!this.drop(m) && this.nodes.has(m.to)) this.n(m.to).step(m);
    }
  }
  tickAll(n: number): void {
    for (let i = 0; i < n; i++) {
      for (const s of this.nodes.values()) s.node.tick();
      this.settle();
    }
  }
  campaign(id: string): void {
    this.n(id).raft.step(emptyMessage(MsgType.Hup, id, id));
    this.settle();
  }
}

test('quorum: the commit index is the majority-acknowledged match', () => {
  const m: Record<string, number> = { a: 5, b: 3, c: 1 };
  assert.equal(committedIndex(['a', 'b', 'c'], (id) => m[id]!), 3);
  assert.equal(committedIndex(['a', 'b', 'c', 'd'], (id) => m[id] ?? 0), 1);
});

test('election: a candidate with votes from a majority leads; at most one leader per term', () => {
  const net = new Net(['a', 'b', 'c']);
  net.campaign('a');
  assert.equal(net.n('a').raft.role, StateRole.Leader);
  const term = net.n('a').raft.term;
  // b cannot win the same term: a and c already voted.
  assert.equal(net.n('b').raft.role, StateRole.Follower);
  assert.equal(net.n('b').raft.lead, 'a');
  assert.equal(net.n('c').raft.term, term);
});

test('leader completeness: a node with a stale log cannot win an election', () => {
  // c lacks the entry of term 2 that a and b hold; pre-vote fails, so c never disrupts.
  const net = new Net(['a', 'b', 'c'], { a: [[1, 1], [2, 2]], b: [[1, 1], [2, 2]], c: [[1, 1]] }, 2);
  net.campaign('c');
  assert.notEqual(net.n('c').raft.role, StateRole.Leader);
  net.campaign('a');
  assert.equal(net.n('a').raft.role, StateRole.Leader);
});

test('log matching: a follower drops conflicting entries and takes the leader log', () => {
  const net = new Net(['a', 'b', 'c'], { a: [[1, 1], [2, 3]], b: [[1, 1], [2, 3]], c: [[1, 1], [2, 2], [3, 2], [4, 2]] }, 3);
  net.campaign('a');
  assert.equal(net.n('a').raft.role, StateRole.Leader);
  net.n('a').propose(Buffer.from('x'));
  net.settle();
  const la = net.n('a').raft.log;
  const lc = net.n('c').raft.log;
  assert.equal(lc.lastIndex(), la.lastIndex());
  for (let i = 1; i <= la.lastIndex(); i++) assert.equal(lc.term(i), la.term(i), `term at ${i}`);
});

test('commitment: an entry of an earlier term is not committed by counting replicas (Figure 8)', () => {
  // a (term 4 leader) holds an old term-2 entry at index 2; b has it too, so it is on a majority.
  const net = new Net(['a', 'b', 'c'], { a: [[1, 1], [2, 2]], b: [[1, 1], [2, 2]], c: [[1, 1]] }, 3);
  // Drop a's no-op appends so only the old entry can be counted.
  net.drop = (m) => m.type === MsgType.App && m.entries.some((e) => e.term === 4);
  net.campaign('a');
  const a = net.n('a').raft;
  assert.equal(a.role, StateRole.Leader);
  assert.equal(a.term, 4);
  assert.ok(a.prs.get('b')!.match >= 2 || a.log.committed < 2);
  assert.ok(a.log.committed < 2, 'index 2 (term 2) must not commit by counting');
  // Once the term-4 no-op replicates, both commit together.
  net.drop = () => false;
  net.n('a').raft.step(emptyMessage(MsgType.Beat, 'a', 'a'));
  net.settle();
  assert.equal(a.log.committed, 3);
  assert.deepEqual(net.nodes.get('b')!.applied.map((e) => e.index), [1, 2, 3]);
});

test('snapshots: a follower behind the compacted log catches up from a snapshot', () => {
  const net = new Net(['a', 'b', 'c']);
  net.drop = (m) => m.to === 'c' || m.from === 'c';
  net.campaign('a');
  for (let i = 0; i < 20; i++) net.n('a').propose(Buffer.from(`p${i}`));
  net.settle();
  const a = net.nodes.get('a')!;
  const committed = net.n('a').raft.log.committed;
  a.storage.compact(committed, { voters: ['a', 'b', 'c'], learners: [] });
  net.drop = () => false;
  let snapshots = 0;
  const origStep = net.n('c').step.bind(net.n('c'));
  net.n('c').step = (m: Message) => {
    if (m.type === MsgType.Snap) snapshots++;
    origStep(m);
  };
  for (let i = 0; i < 3; i++) {
    net.n('a').raft.step(emptyMessage(MsgType.Beat, 'a', 'a'));
    net.settle();
  }
  assert.ok(snapshots >= 1, 'c received a snapshot');
  assert.equal(net.n('c').raft.log.committed, committed);
});

test('membership: a new server joins as a learner, is promoted once caught up, and removal shrinks the quorum', () => {
  const net = new Net(['a', 'b', 'c']);
  net.campaign('a');
  net.add('d', new MemoryStorage({ voters: [], learners: [] }));
  net.n('a').proposeConfChange(encodeConfChange({ type: ConfChangeType.AddLearner, node: 'd' }));
  // A second change is refused while the first is pending.
  assert.throws(() => net.n('a').proposeConfChange(encodeConfChange({ type: ConfChangeType.Remove, node: 'b' })));
  net.settle();
  const conf = net.n('a').raft.conf;
  assert.deepEqual(conf.voters, ['a', 'b', 'c', 'd'], 'd promoted after catching up');
  assert.deepEqual(net.n('d').raft.conf.voters, ['a', 'b', 'c', 'd']);
  net.n('a').proposeConfChange(encodeConfChange({ type: ConfChangeType.Remove, node: 'b' }));
  net.settle();
  assert.deepEqual(net.n('a').raft.conf.voters, ['a', 'c', 'd']);
  assert.equal(net.n('a').raft.conf.epoch, 3);
});

test('leader transfer: TimeoutNow makes the target campaign and win at once', () => {
  const net = new Net(['a', 'b', 'c']);
  net.campaign('a');
  net.n('a').transferLeader('c');
  net.settle();
  assert.equal(net.n('c').raft.role, StateRole.Leader);
  assert.equal(net.n('a').raft.role, StateRole.Follower);
});

test('ReadIndex: a read is answered at the commit index only after a heartbeat quorum', () => {
  const net = new Net(['a', 'b', 'c']);
  net.campaign('a');
  net.n('a').propose(Buffer.from('x'));
  net.settle();
  const reads = net.nodes.get('a')!.reads;
  net.n('a').readIndex(Buffer.from('r1'));
  net.settle();
  assert.deepEqual(reads.map((r) => [r.context.toString(), r.index]), [['r1', net.n('a').raft.log.committed]]);
  // A leader cut off from everyone confirms no read.
  net.drop = () => true;
  net.n('a').readIndex(Buffer.from('r2'));
  net.settle();
  assert.equal(reads.length, 1);
});

test('lease reads: answered locally while a quorum acked recent heartbeats, not after the lease ran out', () => {
  const net = new Net(['a', 'b', 'c'], {}, 0, { checkQuorum: true, leaseRead: true });
  net.tickAll(40); // someone wins an election through ticks
  const leader = ['a', 'b', 'c'].find((id) => net.n(id).raft.role === StateRole.Leader)!;
  assert.ok(leader);
  const reads = net.nodes.get(leader)!.reads;
  net.drop = () => true; // from now on nobody answers
  net.n(leader).readIndex(Buffer.from('fast'));
  net.settle();
  assert.equal(reads.length, 1, 'served from the lease without a round trip');
  for (let i = 0; i < 9; i++) net.n(leader).tick();
  net.n(leader).readIndex(Buffer.from('late'));
  net.settle();
  assert.equal(reads.length, 1, 'no lease read once the lease expired');
});

test('pre-vote and check-quorum: a partitioned node does not disrupt the leader when it returns; an isolated leader steps down', () => {
  const net = new Net(['a', 'b', 'c'], {}, 0, { checkQuorum: true });
  net.tickAll(40);
  const leader = ['a', 'b', 'c'].find((id) => net.n(id).raft.role === StateRole.Leader)!;
  const other = ['a', 'b', 'c'].find((id) => id !== leader)!;
  const term = net.n(leader).raft.term;
  // Isolate one follower for a long time: it pre-votes but never bumps its term.
  net.drop = (m) => m.to === other || m.from === other;
  net.tickAll(60);
  assert.equal(net.n(other).raft.term, term, 'pre-vote kept the isolated node at the same term');
  net.drop = () => false;
  net.tickAll(5);
  assert.equal(net.n(leader).raft.role, StateRole.Leader, 'the returning node did not depose the leader');
  assert.equal(net.n(leader).raft.term, term);
  // Now isolate the leader: check-quorum makes it step down.
  net.drop = (m) => m.to === leader || m.from === leader;
  net.tickAll(25);
  assert.notEqual(net.n(leader).raft.role, StateRole.Leader);
});

test('asynchronous storage writes: a Ready is collected while the previous one is unpersisted without repeating its entries; the leader counts its own copy only once persisted', () => {
  const net = new Net(['a', 'b', 'c']);
  net.campaign('a');
  const a = net.n('a');
  const s = net.nodes.get('a')!;
  const before = a.raft.log.committed;
  a.propose(Buffer.from('x'));
  const rd1 = a.ready();
  assert.equal(rd1.entries.length, 1);
  a.propose(Buffer.from('y'));
  const rd2 = a.ready(); // rd1 not persisted yet
  assert.deepEqual(rd2.entries.map((e) => e.data.toString()), ['y'], 'only the entry not handed out before');
  assert.equal(a.hasReady(), false);
  // b persists and acknowledges both; c hears nothing. The leader's own copy is in flight.
  const apps = [...rd1.messages, ...rd2.messages].filter((m) => m.to === 'b');
  for (const m of apps) net.n('b').step(m);
  const b = net.n('b');
  const rdb = b.ready();
  net.nodes.get('b')!.storage.append(rdb.entries);
  b.advance(rdb);
  for (const m of rdb.messages) if (m.to === 'a') a.step(m);
  assert.equal(a.raft.log.committed, before, 'b alone (with an unpersisted leader copy) is no majority');
  // The leader's writes are done, in order: now a and b hold both.
  s.storage.append(rd1.entries);
  a.advance(rd1);
  s.storage.append(rd2.entries);
  a.advance(rd2);
  assert.equal(a.raft.log.committed, before + 2);
  assert.equal(a.raft.log.unstable.length, 0);
});
