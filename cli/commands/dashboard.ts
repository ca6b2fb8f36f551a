// `tierfs dashboard`: the URL of the status page the MDS leader serves on its HTTP port
// (mds/status-page.ts), for a cluster started by `tierfs up` (whose HTTP ports are fixed).
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { StatusCode, TierfsError } from '../../common/status.js';
import { MdsClient } from '../../mds/client.js';
import { loadState } from '../cluster-state.js';
import { action } from '../errors.js';

export function register(program: Command): void {
  program
    .command('dashboard')
    .description("print the URL of the MDS leader's status page (cluster, copysets, filesystems, mounts; refreshes live)")
    .option('--data-dir <dir>', 'the data dir of a cluster started by tierfs up', '.tierfs')
    .option('--json', 'print JSON')
    .action(
      action(async (o: { dataDir: string; json?: boolean }) => {
        const state = loadState(resolve(o.dataDir));
        if (!state) throw new TierfsError(StatusCode.NOT_FOUND, `no cluster in ${resolve(o.dataDir)} (tierfs up starts one)`);
        const mds = new MdsClient(state.mdsAddresses, { deadlineMs: 10_000 });
        let leader: string;
        try {
          leader = (await mds.clusterStatus()).mds.find((m) => m.leader)?.address ?? state.mdsAddresses[0]!;
        } finally {
          mds.close();
        }
        const i = state.mdsAddresses.indexOf(leader);
        const port = state.ports[`mds${i + 1}-http`];
        if (i < 0 || !port) throw new TierfsError(StatusCode.NOT_FOUND, `the leader ${leader} has no known HTTP port (cluster started before tierfs up fixed them: run tierfs down, then up)`);
        const url = `http://127.0.0.1:${port}/status`;
        process.stdout.write(o.json ? JSON.stringify({ url, leader }) + '\n' : `${url}\n`);
      }),
    );
}
