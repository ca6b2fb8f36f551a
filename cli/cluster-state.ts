// What `tierfs up` started, kept in <dataDir>/cluster.json so `down` and `status` find it.
// Ports are chosen once and reused: a metaserver's address is its Raft identity.
import { readFileSync, writeFileSync, existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';

export interface ProcessRecord {
  name: string;
  role: 's3' | 'mds' | 'metaserver' | 'chunkserver' | 'cachenode' | 'mount';
  pid: number;
  address?: string;
  log: string;
}

export interface ClusterState {
  version: 1;
  ports: Record<string, number>;
  s3: { endpoint: string; bucket: string; accessKey: string; secretKey: string; region: string; embedded: boolean };
  etcd: string[];
  mdsAddresses: string[];
  metaservers: string[];
  /** Chunkservers (`tierfs up --chunkservers N`); absent in clusters made before volumes. */
  chunkservers?: string[];
  /** Cache nodes (tierfs up --cache-nodes N); absent in clusters started before they existed. */
  cacheNodes?: string[];
  fsName: string;
  mountpoint: string;
  processes: ProcessRecord[];
}

export function statePath(dataDir: string): string {
  return join(dataDir, 'cluster.json');
}

export function loadState(dataDir: string): ClusterState | null {
  const p = statePath(dataDir);
  if (!existsSync(p)) return null;
  return JSON.parse(readFileSync(p, 'utf8')) as ClusterState;
}

export function saveState(dataDir: string, state: ClusterState): void {
  const p = statePath(dataDir);
  // It holds the S3 secret of the embedded or external store: the owner's alone.
  writeFileSync(`${p}.tmp`, JSON.stringify(state, null, 2), { mode: 0o600 });
  renameSync(`${p}.tmp`, p);
}
