// `tierfs fsck --fs NAME [--delete-leaked]`: checks that every block object the metadata names
// is in S3 (a missing one is lost data, listed with the file's path) and finds leaked objects
// no inode names, deleting them when asked (only ones older than --min-age).
import { resolve } from 'node:path';
import Table from 'cli-table3';
import type { Command } from 'commander';
import { StatusCode, TierfsError } from '../../common/status.js';
import { MdsClient } from '../../mds/client.js';
import { RemoteMetaClient } from '../../metaserver/client.js';
import { fsck, type FsckReport } from '../../s3adaptor/fsck.js';
import { createObjectStore } from '../../s3adaptor/object-store.js';
import { loadState } from '../cluster-state.js';
import { action } from '../errors.js';

interface FsckOpts {
  fs: string;
  dataDir: string;
  mds?: string;
  deleteLeaked?: boolean;
  minAge: string;
  json?: boolean;
}

function printReport(r: FsckReport): void {
  const t = new Table({ head: ['check', 'result'], style: { head: [], border: [] } });
  t.push(
    ['directories / files', `${r.directories} / ${r.files}${r.detachedFiles ? ` (+${r.detachedFiles} in no directory)` : ''}`],
    ['objects in S3', `${r.objects} (${(r.objectBytes / 2 ** 20).toFixed(1)} MiB)${r.foreignObjects ? `, ${r.foreignObjects} foreign` : ''}`],
    ['referenced objects', String(r.referencedObjects)],
    ['missing objects', r.missingObjects ? `${r.missingObjects} in ${r.brokenFiles} files` : '0'],
    ['leaked objects', `${r.leakedObjects} (${(r.leakedBytes / 2 ** 20).toFixed(1)} MiB)${r.deletedObjects ? `, ${r.deletedObjects} deleted` : ''}`],
    ['unreferenced, too young to judge', String(r.youngUnreferenced)],
  );
  process.stdout.write(t.toString() + '\n');
  for (const m of r.missing.slice(0, 20)) {
    process.stdout.write(`missing: ${m.path} (inode ${m.ino}): ${m.key} ${m.foundSize === null ? 'is gone' : `has ${m.foundSize} of ${m.expectedSize} bytes`}\n`);
  }
  if (r.leakedObjects > 0 && !r.deletedObjects) process.stdout.write('leaked objects can be deleted with --delete-leaked\n');
}

export function register(program: Command): void {
  program
    .command('fsck')
    .description('check a filesystem: every object its files need is in S3; find (and delete) leaked objects')
    .requiredOption('--fs <name>', 'filesystem name')
    .option('--data-dir <dir>', 'the data dir of a cluster started by tierfs up', '.tierfs')
    .option('--mds <addrs>', 'MDS addresses (instead of --data-dir)')
    .option('--delete-leaked', 'delete leaked objects (objects no inode names, older than --min-age)')
    .option('--min-age <seconds>', 'unreferenced objects younger than this may belong to a write in progress and are left alone', '3600')
    .option('--json', 'print the report as JSON')
    .action(
      action(async (opts: FsckOpts) => {
        const minAge = Number(opts.minAge);
        if (!Number.isFinite(minAge) || minAge < 0) throw new TierfsError(StatusCode.INVALID_ARGUMENT, `--min-age = ${opts.minAge}: must be a number of seconds >= 0`);
        const addresses = opts.mds ? opts.mds.split(',') : (loadState(resolve(opts.dataDir))?.mdsAddresses ?? []);
        if (addresses.length === 0) throw new TierfsError(StatusCode.INVALID_ARGUMENT, `no cluster in ${resolve(opts.dataDir)}; give --mds ADDRS`);
        const mds = new MdsClient(addresses, { deadlineMs: 10_000 });
        try {
          const info = await mds.getFsInfo(opts.fs);
          if (!info.s3) throw new TierfsError(StatusCode.NOT_SUPPORTED, `filesystem ${opts.fs} keeps no data in S3`);
          const store = createObjectStore({
            endpoint: info.s3.endpoint, bucket: info.s3.bucket, accessKeyId: info.s3.access_key, secretAccessKey: info.s3.secret_key,
            region: info.s3.region || 'us-east-1', keyPrefix: info.s3.key_prefix,
          });
          const meta = new RemoteMetaClient({ fsId: info.fs_id, mds });
          try {
            const report = await fsck({
              fsId: info.fs_id, chunkSize: Number(info.chunk_size), blockSize: Number(info.block_size), store, meta,
              minAgeMs: minAge * 1000, deleteLeaked: !!opts.deleteLeaked,
              onProgress: opts.json ? undefined : (what, n) => process.stderr.write(`fsck: ${n} ${what}...\r`),
            });
            if (opts.json) process.stdout.write(JSON.stringify(report) + '\n');
            else printReport(report);
            if (report.brokenFiles > 0) process.exitCode = 1;
          } finally {
            await meta.close();
            store.close();
          }
        } finally {
          mds.close();
        }
      }),
    );
}
