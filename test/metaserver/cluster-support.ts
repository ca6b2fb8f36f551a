// Metaserver child processes on loopback for cluster tests, and the CopysetService calls a
// test makes in place of the MDS.
import * as grpc from '@grpc/grpc-js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHANNEL_OPTIONS, loadProto, sleep, unary } from '../../common/grpc.js';
import { check, StatusCode } from '../../common/status.js';
import type { ProtoGrpcType } from '../../proto/gen/copyset.js';
import type { StatusResponse__Output } from '../../proto/gen/tierfs/copyset/StatusResponse.js';
import type { CopysetStatusResponse__Output } from '../../proto/gen/tierfs/copyset/CopysetStatusResponse.js';
import { spawnDaemon, type Spawned } from '../support/process.js';
import { freePort } from '../support/ports.js';

export interface MetaProc {
  address: string;
  dataDir: string;
  proc: Spawned;
}

/** Starts a metaserver; pass `address` to restart one on its old address (its raft id). */
export async function startMetaProc(
  dir: string, name: string, extra: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}, address = '',
): Promise<MetaProc> {
  address ||= `127.0.0.1:${await freePort()}`;
  const dataDir = join(dir, name);
  const cfg = join(dir, `${name}.yaml`);
  const body = {
    dataDir, listen: address, backgroundIntervalMs: 200, txResolveAfterMs: 2000,
    raft: { tickMs: 50, electionTicks: 10, heartbeatTicks: 1, snapshotThreshold: 200 }, ...extra,
  };
  writeFileSync(cfg, JSON.stringify(body));
  const proc = await spawnDaemon(['metaserver', '--config', cfg], { logFile: join(dir, `${name}.log`), env });
  return { address, dataDir, proc };
}

function copysetClient(address: string): grpc.Client {
  const Ctor = loadProto<ProtoGrpcType>('copyset.proto').tierfs.copyset.CopysetService;
  return new Ctor(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
}

export async function copysetCall<R extends { status: { code: string; message: string; leader_hint: string } | null }>(
  address: string, method: string, req: object,
): Promise<R> {
  const c = copysetClient(address);
  try {
    return await unary<object, R>(c, method, req, 10_000);
  } finally {
    c.close();
  }
}

/** Calls a leader-only CopysetService method on whichever peer leads, waiting for an election. */
export async function onLeader(peers: string[], method: string, req: object, deadlineMs = 60_000): Promise<void> {
  const until = Date.now() + deadlineMs;
  let last = '';
  while (Date.now() < until) {
    for (const p of peers) {
      const res = await copysetCall<StatusResponse__Output>(p, method, req).catch((e: Error) => ({ status: { code: 'UNAVAILABLE', message: e.message, leader_hint: '' } }));
      if (res.status?.code === StatusCode.OK) return;
      last = `${p}: ${res.status?.code} ${res.status?.message}`;
      if (res.status?.code !== StatusCode.NOT_LEADER && res.status?.code !== StatusCode.UNAVAILABLE) check(res.status, method);
    }
    await sleep(100);
  }
  throw new Error(`${method}: no leader answered: ${last}`);
}

export async function leaderOf(peers: string[], poolId: number, copysetId: number, deadlineMs = 60_000): Promise<string> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    for (const p of peers) {
      const res = await copysetCall<CopysetStatusResponse__Output>(p, 'GetCopysetStatus', { pool_id: poolId, copyset_id: copysetId }).catch(() => null);
      if (res?.copyset?.is_leader) return p;
    }
    await sleep(100);
  }
  throw new Error(`no leader of copyset ${poolId}.${copysetId}`);
}

export async function copysetStatusOn(address: string, poolId: number, copysetId: number): Promise<CopysetStatusResponse__Output> {
  return copysetCall<CopysetStatusResponse__Output>(address, 'GetCopysetStatus', { pool_id: poolId, copyset_id: copysetId });
}
