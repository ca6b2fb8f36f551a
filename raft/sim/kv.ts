// The raft simulator's key-value state machine: put, get, compare-and-set, persisted on the
// server's simulated disk like a daemon's state (applied index in the same unsynced batch as
// the change, replay skips what was applied, `flush` syncs before the log is compacted).
import type { LogEntryForApply, StateMachine } from '../runtime/api.js';
import type { KvOp } from '../runtime/env.js';
import type { SimDisk, SimDiskHandle } from './disk.js';

export type KvCommand = { op: 'put'; key: string; value: string } | { op: 'cas'; key: string; expected: string | null; value: string };

export function encodeKv(c: KvCommand): Buffer {
  return Buffer.from(c.op === 'put' ? `p\u0000${c.key}\u0000${c.value}` : `c\u0000${c.key}\u0000${c.value}\u0000${c.expected ?? '\u0001'}`);
}

export function decodeKv(b: Buffer): KvCommand {
  const parts = b.toString().split('\u0000');
  if (parts[0] === 'p') return { op: 'put', key: parts[1]!, value: parts[2]! };
  return { op: 'cas', key: parts[1]!, value: parts[2]!, expected: parts[3] === '\u0001' ? null : parts[3]! };
}

const APPLIED = 'applied';
const DATA = 'kv/';

export class SimKvStateMachine implements StateMachine {
  readonly data = new Map<string, string>();
  private applied = { index: 0, term: 0 };

  constructor(private readonly disk: SimDiskHandle<string>) {}

  async load(): Promise<this> {
    const a = await this.disk.get(APPLIED);
    if (a) this.applied = JSON.parse(a) as { index: number; term: number };
    for await (const [k, v] of this.disk.iterator({ gte: DATA, lt: `${DATA}~` })) this.data.set(k.slice(DATA.length), v);
    return this;
  }

  async apply(entries: LogEntryForApply[]): Promise<unknown[]> {
    const changes = new Map<string, string>();
    const results: unknown[] = [];
    let last = this.applied;
    for (const e of entries) {
      if (e.index <= this.applied.index) {
        results.push(null);
        continue;
      }
      last = { index: e.index, term: e.term };
      const c = decodeKv(e.data);
      const cur = changes.get(c.key) ?? this.data.get(c.key) ?? null;
      if (c.op === 'put' || cur === c.expected) {
        changes.set(c.key, c.value);
        results.push(true);
      } else {
        results.push(false);
      }
    }
    if (last.index === this.applied.index) return results;
    const ops: Array<KvOp<string>> = [...changes].map(([k, v]) => ({ type: 'put', key: DATA + k, value: v }));
    ops.push({ type: 'put', key: APPLIED, value: JSON.stringify(last) });
    await this.disk.batch(ops);
    for (const [k, v] of changes) this.data.set(k, v);
    this.applied = last;
    return results;
  }

  async appliedIndex(): Promise<number> {
    return this.applied.index;
  }

  async snapshot(): Promise<{ index: number; term: number; chunks: AsyncIterable<Buffer> }> {
    const body = Buffer.from(JSON.stringify([...this.data]));
    return {
      ...this.applied,
      chunks: (async function* () {
        yield body;
      })(),
    };
  }

  async restore(index: number, term: number, chunks: AsyncIterable<Buffer>): Promise<void> {
    const parts: Buffer[] = [];
    for await (const c of chunks) parts.push(c);
    const entries = JSON.parse(Buffer.concat(parts).toString()) as Array<[string, string]>;
    const ops: Array<KvOp<string>> = [...this.data.keys()].map((k) => ({ type: 'del', key: DATA + k }));
    for (const [k, v] of entries) ops.push({ type: 'put', key: DATA + k, value: v });
    ops.push({ type: 'put', key: APPLIED, value: JSON.stringify({ index, term }) });
    await this.disk.batch(ops);
    this.data.clear();
    for (const [k, v] of entries) this.data.set(k, v);
    this.applied = { index, term };
  }

  async flush(): Promise<void> {
    await this.disk.put(APPLIED, JSON.stringify(this.applied), { sync: true });
  }
}

/** The replica's data (not its applied index, which differs by trailing no-ops). */
export function kvDigest(disk: SimDisk<string>): string {
  return JSON.stringify(disk.dump(DATA));
}
