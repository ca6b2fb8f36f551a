// A real etcd (Debian's etcd-server) as a child process on free loopback ports.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { spawnProcess, type Spawned } from './process.js';
import { tempDir } from './tmp.js';
import { freePort } from './ports.js';

export interface TestEtcd {
  endpoint: string;
  proc: Spawned;
  close(): Promise<void>;
}

export function etcdBinary(): string {
  for (const candidate of ['/usr/bin/etcd', '/usr/local/bin/etcd']) {
    try {
      execFileSync(candidate, ['--version'], { stdio: 'ignore' });
      return candidate;
    } catch {
      /* try the next */
    }
  }
  throw new Error('etcd not found: apt-get install etcd-server');
}

export async function startEtcd(): Promise<TestEtcd> {
  const tmp = tempDir('tierfs-etcd-');
  const clientPort = await freePort();
  const peerPort = await freePort();
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const proc = await spawnProcess(
    etcdBinary(),
    [
      '--name', 'test', '--data-dir', join(tmp.path, 'data'),
      '--listen-client-urls', client, '--advertise-client-urls', client,
      '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `test=${peer}`, '--initial-cluster-state', 'new',
      '--log-level', 'warn',
    ],
    { readyProbe: async () => (await fetch(`${client}/health`)).ok, logFile: join(tmp.path, 'etcd.log') },
  );
  return {
    endpoint: client,
    proc,
    close: async () => {
      await proc.stop();
      tmp.remove();
    },
  };
}
