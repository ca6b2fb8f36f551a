// A modelled remote link for benchmarks: a network namespace joined to this one by a veth
// pair, shaped with tc netem on both ends (half the round trip each way, and a rate cap on
// the way back, where the data flows; a kernel without netem gets the rate cap alone, by tbf). A server started inside it (S3) is as far away as the
// model says, while everything else (cache nodes, the MDS) stays on loopback. On one machine
// a page-cached S3 server over loopback is faster than any real S3 a cache group would save
// reads from; this is how the bench measures the group against a realistic S3. Needs root
// and iproute2 (`ip`, `tc`).
import { execFileSync } from 'node:child_process';
import { StatusCode, TierfsError } from '../common/status.js';

export interface LinkModel {
  /** Round trip time added, in ms (half each way). */
  rttMs: number;
  /** Bandwidth cap of the far side's sending direction (responses), in Mbit/s. */
  rateMbit: number;
}

/** Parses `rtt=20ms,rate=1000mbit` (also `1gbit`); `off` or empty: null. */
export function parseLinkModel(text: string | undefined): LinkModel | null {
  if (!text || text === 'off') return null;
  const model: Partial<LinkModel> = {};
  for (const part of text.split(',')) {
    const [k, v] = part.split('=').map((s) => s.trim());
    const rtt = k === 'rtt' ? /^(\d+(?:\.\d+)?)ms$/.exec(v ?? '') : null;
    const rate = k === 'rate' ? /^(\d+(?:\.\d+)?)(m|g)bit$/.exec(v ?? '') : null;
    if (rtt) model.rttMs = Number(rtt[1]);
    else if (rate) model.rateMbit = Number(rate[1]) * (rate[2] === 'g' ? 1000 : 1);
    else throw new TierfsError(StatusCode.INVALID_ARGUMENT, `link model ${JSON.stringify(text)}: expected rtt=<N>ms,rate=<N>mbit|gbit (e.g. rtt=20ms,rate=1gbit)`);
  }
  if (model.rttMs === undefined || model.rateMbit === undefined) {
    throw new TierfsError(StatusCode.INVALID_ARGUMENT, `link model ${JSON.stringify(text)}: needs both rtt and rate (e.g. rtt=20ms,rate=1gbit)`);
  }
  return model as LinkModel;
}

const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: 'pipe' }).toString();

export class RemoteLink {
  readonly namespace: string;
  /** This side's address, and the far side's (where a server inside should listen). */
  readonly localAddress: string;
  readonly remoteAddress: string;
  private readonly localDev: string;
  /** False when the kernel has no netem: the rate is capped (tbf) but no latency is added. */
  private delayed = false;

  constructor(
    readonly model: LinkModel,
    id = process.pid % 10_000,
  ) {
    this.namespace = `tfsrl${id}`;
    this.localDev = `tfsrl${id}a`;
    const remoteDev = `tfsrl${id}b`;
    // 10.(250-253).x.y/30 picked from the pid, apart from the test lab's 10.200-249.
    const a = 250 + (id % 4);
    const b = Math.floor(id / 4) % 250;
    const c = (Math.floor(id / 1000) % 60) * 4;
    this.localAddress = `10.${a}.${b}.${c + 1}`;
    this.remoteAddress = `10.${a}.${b}.${c + 2}`;
    const half = `${model.rttMs / 2}ms`;
    // Enough queue for the bandwidth-delay product many times over: the cap, not drops, limits.
    const limit = String(Math.max(10_000, Math.ceil(((model.rateMbit * 1e6) / 8) * (model.rttMs / 1000) / 1000) * 4));
    try {
      run('ip', ['netns', 'add', this.namespace]);
      run('ip', ['link', 'add', this.localDev, 'type', 'veth', 'peer', 'name', remoteDev]);
      run('ip', ['link', 'set', remoteDev, 'netns', this.namespace]);
      run('ip', ['addr', 'add', `${this.localAddress}/30`, 'dev', this.localDev]);
      run('ip', ['link', 'set', this.localDev, 'up']);
      const inside = (...args: string[]) => run('ip', ['netns', 'exec', this.namespace, ...args]);
      inside('ip', 'addr', 'add', `${this.remoteAddress}/30`, 'dev', remoteDev);
      inside('ip', 'link', 'set', remoteDev, 'up');
      inside('ip', 'link', 'set', 'lo', 'up');
      try {
        run('tc', ['qdisc', 'add', 'dev', this.localDev, 'root', 'netem', 'delay', half, 'limit', limit]);
        inside('tc', 'qdisc', 'add', 'dev', remoteDev, 'root', 'netem', 'delay', half, 'rate', `${model.rateMbit}mbit`, 'limit', limit);
        this.delayed = true;
      } catch (err) {
        // Kernels built without sch_netem (CONFIG_NET_SCH_NETEM unset, as on the test
        // machine) cannot add latency; a token bucket still caps the rate.
        if (!/qdisc kind is unknown/.test(String((err as { stderr?: Buffer }).stderr ?? ''))) throw err;
        const burst = `${Math.max(64, Math.ceil((model.rateMbit * 1e6) / 8 / 250 / 1024))}kb`; // 4 ms of data
        inside('tc', 'qdisc', 'add', 'dev', remoteDev, 'root', 'tbf', 'rate', `${model.rateMbit}mbit`, 'burst', burst, 'latency', '50ms');
      }
    } catch (err) {
      this.remove();
      throw new TierfsError(StatusCode.UNAVAILABLE, `cannot set up the modelled link (needs root, ip and tc): ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`);
    }
  }

  /** The argv prefix that runs a command inside the far namespace. */
  get prefix(): string[] {
    return ['ip', 'netns', 'exec', this.namespace];
  }

  describe(): string {
    return this.delayed ? `rtt ${this.model.rttMs} ms, ${this.model.rateMbit} Mbit/s` : `${this.model.rateMbit} Mbit/s, no added rtt (kernel without netem)`;
  }

  /** Deletes the namespace (and with it the veth pair and its qdiscs). */
  remove(): void {
    try {
      run('ip', ['netns', 'del', this.namespace]);
    } catch {
      /* already gone */
    }
    try {
      run('ip', ['link', 'del', this.localDev]);
    } catch {
      /* went with the namespace */
    }
  }
}
