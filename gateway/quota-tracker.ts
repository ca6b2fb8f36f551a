// The mount's view of the filesystem's directory quotas (issue 16): limits and usage as the
// metaservers last answered, plus what this mount did since. A change is checked against
// every quota on the path before it is made (EDQUOT), and its delta is sent to the
// metaservers right after (one AddQuotaUsage Raft entry for all pending deltas, every
// `flushMs`). Several mounts writing under one quota each see the others' usage at the next
// refresh, so together they can pass a limit by what they write within one refresh interval.
import { ROOT_INO } from '../metaserver/meta-client.js';
import type { QuotaDelta, QuotaRecord } from '../metaserver/quota.js';
import type { Logger } from '../common/log.js';
import { silentLogger } from '../common/log.js';
import { E, posix } from './errors.js';

/** What the tracker needs from the metaservers (metaserver/quota-client.ts). */
export interface QuotaStore {
  list(): Promise<QuotaRecord[]>;
  addUsage(deltas: QuotaDelta[]): Promise<QuotaRecord[]>;
}

export interface QuotaTrackerOptions {
  /** How often limits and usage are read again (default 1 s). */
  refreshMs?: number;
  /** How often pending deltas are sent (default 100 ms). */
  flushMs?: number;
  logger?: Logger;
}

/** A change of `bytes` and `inodes` under every quota of `quotas`. */
export interface QuotaChange {
  quotas: QuotaRecord[];
  bytes: number;
  inodes: number;
}

/** The changes summed per quota. */
function netChanges(changes: QuotaChange[]): Array<{ quota: QuotaRecord; bytes: number; inodes: number }> {
  const net = new Map<number, { quota: QuotaRecord; bytes: number; inodes: number }>();
  for (const c of changes) {
    for (const q of c.quotas) {
      const n = net.get(q.ino) ?? { quota: q, bytes: 0, inodes: 0 };
      n.bytes += c.bytes;
      n.inodes += c.inodes;
      net.set(q.ino, n);
    }
  }
  return [...net.values()];
}

/** A walk up the tree that goes on longer than this is a cycle (a corrupt parent list). */
const MAX_DEPTH = 4096;

export class QuotaTracker {
  private quotas = new Map<number, QuotaRecord>();
  /** Deltas not sent yet, and the ones on their way (already part of no server answer). */
  private pending = new Map<number, QuotaDelta>();
  private sending = new Map<number, QuotaDelta>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private lastRefresh = 0;
  private readonly refreshMs: number;
  private readonly flushMs: number;
  private readonly log: Logger;

  constructor(
    private readonly store: QuotaStore,
    /** The parent directory of a directory (from the mount's attribute cache). */
    private readonly parentOf: (dir: number) => Promise<number>,
    opts: QuotaTrackerOptions = {},
  ) {
    this.refreshMs = opts.refreshMs ?? 1000;
    this.flushMs = opts.flushMs ?? 100;
    this.log = opts.logger ?? silentLogger;
  }

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.tick(), this.flushMs);
    this.timer.unref();
  }

  /** Sends what is pending; stops the timer. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
    await this.send();
  }

  /** Quota directories on the way from `dir` (included) up to the root, innermost first. */
  async quotasAbove(dir: number): Promise<QuotaRecord[]> {
    if (this.quotas.size === 0) return [];
    if (this.quotas.size === 1 && this.quotas.has(ROOT_INO)) return [this.quotas.get(ROOT_INO)!];
    const out: QuotaRecord[] = [];
    let cur = dir;
    for (let depth = 0; depth < MAX_DEPTH; depth++) {
      const q = this.quotas.get(cur);
      if (q) out.push(q);
      if (cur === ROOT_INO) return out;
      cur = await this.parentOf(cur);
    }
    throw posix(E.ELOOP, `directory ${dir} is more than ${MAX_DEPTH} levels deep`);
  }

  /** Every quota a change under these directories counts against (one list per name). */
  async quotasOver(dirs: number[]): Promise<QuotaRecord[]> {
    const out: QuotaRecord[] = [];
    for (const d of dirs) out.push(...(await this.quotasAbove(d)));
    return out;
  }

  /** Quotas this mount knows of. */
  get count(): number {
    return this.quotas.size;
  }

  get active(): boolean {
    return this.quotas.size > 0;
  }

  /** Usage as this mount knows it: the last answer plus what it sent or will send since. */
  usage(q: QuotaRecord): { bytes: number; inodes: number } {
    const p = this.pending.get(q.ino);
    const s = this.sending.get(q.ino);
    return { bytes: q.usedBytes + (p?.bytes ?? 0) + (s?.bytes ?? 0), inodes: q.usedInodes + (p?.inodes ?? 0) + (s?.inodes ?? 0) };
  }

  /**
   * EDQUOT when the changes would pass a limit. Each change counts once per quota it lists (a
   * quota met through two names of one file counts twice, as the usage does); a quota whose
   * net change does not grow (a rename within it, a replaced file) never fails.
   */
  check(changes: QuotaChange[]): void {
    for (const { quota: q, bytes, inodes } of netChanges(changes)) {
      const used = this.usage(q);
      if (q.maxBytes > 0 && bytes > 0 && used.bytes + bytes > q.maxBytes) {
        throw posix(E.EDQUOT, `quota of ${q.path || `inode ${q.ino}`}: ${used.bytes} + ${bytes} bytes would pass ${q.maxBytes}`);
      }
      if (q.maxInodes > 0 && inodes > 0 && used.inodes + inodes > q.maxInodes) {
        throw posix(E.EDQUOT, `quota of ${q.path || `inode ${q.ino}`}: ${used.inodes} + ${inodes} inodes would pass ${q.maxInodes}`);
      }
    }
  }

  /** Records changes that were made; sent with the next flush. */
  account(changes: QuotaChange[]): void {
    for (const { quota, bytes, inodes } of netChanges(changes)) this.addPending(quota.ino, bytes, inodes);
  }

  private addPending(ino: number, bytes: number, inodes: number): void {
    if (bytes === 0 && inodes === 0) return;
    const d = this.pending.get(ino) ?? { ino, bytes: 0, inodes: 0 };
    d.bytes += bytes;
    d.inodes += inodes;
    this.pending.set(ino, d);
  }

  /** The nearest quota at or above `dir` (statfs inside a quota directory). */
  async nearest(dir: number): Promise<QuotaRecord | undefined> {
    return (await this.quotasAbove(dir))[0];
  }

  private tick(): void {
    if (this.running) return;
    this.running = (async () => {
      try {
        await this.send();
        if (Date.now() - this.lastRefresh >= this.refreshMs) await this.refresh();
      } catch (err) {
        this.log.warn({ err: String(err) }, 'quota usage could not be sent or refreshed; will retry');
      } finally {
        this.running = null;
      }
    })();
  }

  /** Reads every quota again (limits set or removed by `tierfs quota`, other mounts' usage). */
  async refresh(): Promise<void> {
    const all = await this.store.list();
    this.quotas = new Map(all.map((q) => [q.ino, q]));
    this.lastRefresh = Date.now();
  }

  /** Sends the pending deltas as one entry; the answer carries every quota after it. */
  async send(): Promise<void> {
    if (this.pending.size === 0 || this.sending.size > 0) return;
    this.sending = this.pending;
    this.pending = new Map();
    try {
      const after = await this.store.addUsage([...this.sending.values()]);
      this.sending = new Map();
      this.quotas = new Map(after.map((q) => [q.ino, q]));
      this.lastRefresh = Date.now();
    } catch (err) {
      // The call retried with one request id until its deadline; sent again as new deltas.
      for (const d of this.sending.values()) this.addPending(d.ino, d.bytes, d.inodes);
      this.sending = new Map();
      throw err;
    }
  }
}
