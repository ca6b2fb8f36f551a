// Network namespaces for multi-host fault tests: one namespace per "host", each with a veth
// pair to a bridge in the test's own namespace (which plays the client hosts: MDS, S3, the
// mount). `cut(i)` takes host i off the network (its bridge-side link down), `heal(i)` puts
// it back. Names carry the test's pid, so concurrent runs do not collide. Needs iproute2
// and root.
import { execFileSync } from 'node:child_process';

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' }).toString();

export interface NetnsHost {
  name: string;
  address: string;
  /** The bridge-side end of its veth pair: down = partitioned. */
  hostLink: string;
}

export class NetnsLab {
  readonly bridge: string;
  readonly bridgeAddress: string;
  readonly hosts: NetnsHost[] = [];

  constructor(count: number, id = process.pid % 10_000) {
    const tag = `tfs${id}`;
    // 10.(200-249).x.0/24 picked from the pid: another run of the test on the machine uses another subnet.
    const net = `10.${200 + (id % 50)}.${Math.floor(id / 50) % 250}`;
    this.bridge = `${tag}br`;
    this.bridgeAddress = `${net}.1`;
    try {
      ip('link', 'add', this.bridge, 'type', 'bridge');
      ip('addr', 'add', `${this.bridgeAddress}/24`, 'dev', this.bridge);
      ip('link', 'set', this.bridge, 'up');
      for (let i = 0; i < count; i++) {
        const h: NetnsHost = { name: `${tag}n${i}`, address: `${net}.${11 + i}`, hostLink: `${tag}h${i}` };
        const nsLink = `${tag}v${i}`;
        ip('netns', 'add', h.name);
        this.hosts.push(h);
        ip('link', 'add', h.hostLink, 'type', 'veth', 'peer', 'name', nsLink);
        ip('link', 'set', nsLink, 'netns', h.name);
        ip('link', 'set', h.hostLink, 'master', this.bridge);
        ip('link', 'set', h.hostLink, 'up');
        ip('netns', 'exec', h.name, 'ip', 'addr', 'add', `${h.address}/24`, 'dev', nsLink);
        ip('netns', 'exec', h.name, 'ip', 'link', 'set', nsLink, 'up');
        ip('netns', 'exec', h.name, 'ip', 'link', 'set', 'lo', 'up');
      }
    } catch (err) {
      this.remove();
      throw err;
    }
  }

  /** argv that runs `cmd` inside host i's namespace. */
  exec(i: number, cmd: string, args: string[]): [string, string[]] {
    return ['ip', ['netns', 'exec', this.hosts[i]!.name, cmd, ...args]];
  }

  cut(i: number): void {
    ip('link', 'set', this.hosts[i]!.hostLink, 'down');
  }

  heal(i: number): void {
    ip('link', 'set', this.hosts[i]!.hostLink, 'up');
  }

  remove(): void {
    for (const h of this.hosts) {
      try {
        ip('netns', 'del', h.name); // takes its veth pair with it
      } catch {
        /* already gone */
      }
    }
    try {
      ip('link', 'del', this.bridge);
    } catch {
      /* already gone */
    }
  }
}

/** True when this process may create namespaces (root with iproute2). */
export function netnsAvailable(): boolean {
  try {
    ip('netns', 'list');
    return process.getuid?.() === 0;
  } catch {
    return false;
  }
}
