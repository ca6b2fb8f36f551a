import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { freePort } from '../support/ports.js';
import { repoRoot, spawnProcess, type Spawned } from '../support/process.js';
import { tempDir } from '../support/tmp.js';
import { waitFor as poll } from '../support/wait.js';

const daemon = join(repoRoot, 'dist', 'raft', 'bench', 'kv-daemon.js');

async function get<T>(port: number, path: string): Promise<{ code: number; body: T }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(10_000) });
  return { code: res.status, body: (await res.json()) as T };
}

const waitFor = <T>(what: string, fn: () => Promise<T | undefined | null | false>, ms = 40_000) => poll(what, fn, ms, 100);

test('3 processes over gRPC: kill -9 the leader during writes, no acknowledged write lost, restarted node catches up by snapshot', async () => {
  const dir = tempDir('raft-proc-');
  const addrs = [0, 1, 2].map(() => '');
  for (let i = 0; i < 3; i++) addrs[i] = `127.0.0.1:${await freePort()}`;
  const procs: Array<Spawned<{ http: number }> | null> = [null, null, null];
  const start = async (i: number) => {
    procs[i] = await spawnProcess<{ http: number }>(process.execPath, [daemon, '--dir', join(dir.path, `n${i}`), '--self', addrs[i]!, '--peers', addrs.join(','), '--threshold', '40'], {
      logFile: join(dir.path, `n${i}.log`),
    });
  };
  try {
    for (let i = 0; i < 3; i++) await start(i);
    const findLeader = async () =>
      (await waitFor('a leader', async () => {
        for (let i = 0; i < 3; i++) {
          const p = procs[i];
          if (!p) continue;
          const s = await get<{ isLeader: boolean }>(p.info.http, '/status');
          if (s.body.isLeader) return { i };
        }
        return undefined;
      })).i;
    const acked: string[] = [];
    let leader = await findLeader();
    const put = async (k: string): Promise<boolean> => {
      for (let attempt = 0; attempt < 200; attempt++) {
        const p = procs[leader];
        if (p) {
          const r = await get<{ ok?: boolean }>(p.info.http, `/put?k=${k}&v=${k}`).catch(() => ({ code: 0, body: {} }));
          if (r.code === 200) return true;
        }
        await new Promise((r) => setTimeout(r, 100));
        leader = await findLeader();
      }
      return false;
    };
    // Writes go 10 at a time: enough to keep batches in flight, few enough round trips.
    const putAll = async (keys: string[]) => {
      for (let i = 0; i < keys.length; i += 10) {
        const chunk = keys.slice(i, i + 10);
        const ok = await Promise.all(chunk.map((k) => put(k)));
        chunk.forEach((k, j) => ok[j] && acked.push(k));
      }
    };
    await putAll(Array.from({ length: 60 }, (_, i) => `a${i}`));
    // Kill the leader while a burst of writes is in flight.
    // The leader sends its appends before its own write of them is done: a kill -9 lands
    // while both are in flight, and whatever was acknowledged must survive.
    const killLeaderDuringBurst = async (prefix: string): Promise<number> => {
      const victim = leader;
      const burst = Array.from({ length: 20 }, (_, i) => `${prefix}${i}`);
      const inflight = burst.map((k) =>
        get(procs[victim]!.info.http, `/put?k=${k}&v=${k}`).then(
          (r) => (r.code === 200 ? k : null),
          () => null,
        ),
      );
      await procs[victim]!.kill9();
      procs[victim] = null;
      for (const k of await Promise.all(inflight)) if (k) acked.push(k);
      leader = await findLeader();
      return victim;
    };
    const victim = await killLeaderDuringBurst('b');
    await putAll(Array.from({ length: 100 }, (_, i) => `c${i}`));
    // Every acknowledged write is readable through a linearizable read on the new leader.
    const dump = await get<{ data: Record<string, string>; status: { commitIndex: number } }>(procs[leader]!.info.http, '/dump');
    for (const k of acked) assert.equal(dump.body.data[k], k, `acknowledged write ${k} lost`);
    await get(procs[leader]!.info.http, '/get?k=a0');
    // Restart the killed node: it catches up (the leader compacted past its log, so by snapshot).
    await start(victim);
    const commit = dump.body.status.commitIndex;
    await waitFor('restarted node caught up', async () => {
      const d = await get<{ data: Record<string, string>; status: { appliedIndex: number }; restores: number }>(procs[victim]!.info.http, '/dump');
      return d.body.status.appliedIndex >= commit && acked.every((k) => d.body.data[k] === k) && d;
    }).then((d) => assert.ok(d.body.restores >= 1, 'the restarted node caught up through a snapshot'));

    // Again with the restarted node back in the quorum: its recovered log must serve a new leader.
    const second = await killLeaderDuringBurst('d');
    await putAll(Array.from({ length: 20 }, (_, i) => `e${i}`));
    const after = await get<{ data: Record<string, string> }>(procs[leader]!.info.http, '/dump');
    for (const k of acked) assert.equal(after.body.data[k], k, `acknowledged write ${k} lost after the second kill`);
    await start(second);
  } finally {
    for (const p of procs) await p?.stop();
    dir.remove();
  }
});
