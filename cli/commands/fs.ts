// `tierfs fs create|list|info|delete`: filesystem admin against the MDS cluster.
// Tables for people, --json for scripts.
import type { Command } from 'commander';
import Table from 'cli-table3';
import { MdsClient, type FsInfo } from '../../mds/client.js';
import { StatusCode, TierfsError } from '../../common/status.js';
import { action } from '../errors.js';
import { s3SecretFrom } from '../cluster-auth.js';

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3 };

/** "4MiB", "64M", "65536" -> bytes. */
export function parseSize(text: string, what: string): number {
  const m = /^(\d+)\s*([a-zA-Z]*)$/.exec(text.trim());
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new TierfsError(StatusCode.INVALID_ARGUMENT, `${what} "${text}": expected a size like 4MiB, 64M or 65536`);
  return Number(m[1]) * unit;
}

export function human(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[i]}`;
}

/** What we print: the secret key never leaves the MDS through the CLI. */
function redacted(fs: FsInfo): FsInfo {
  return { ...fs, s3: fs.s3 ? { ...fs.s3, secret_key: fs.s3.secret_key ? '***' : '' } : null };
}

/** Runs `fn` with a client of the MDS cluster given by --mds, closing it afterwards. */
async function withMds<T>(addresses: string, fn: (client: MdsClient) => Promise<T>): Promise<T> {
  const client = new MdsClient(addresses, { deadlineMs: 10_000 });
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

function printFs(fs: FsInfo): void {
  const t = new Table();
  t.push(
    { id: String(fs.fs_id) }, { name: fs.name }, { type: fs.fs_type }, { status: fs.status },
    { endpoint: fs.s3?.endpoint ?? '' }, { bucket: fs.s3?.bucket ?? '' }, { 'key prefix': fs.s3?.key_prefix ?? '' },
    { 'block size': human(fs.block_size) }, { 'chunk size': human(fs.chunk_size) },
    { used: human(fs.used_bytes) }, { inodes: String(fs.inode_count) }, { 'trash days': fs.trash_days ? String(fs.trash_days) : 'off' },
    { created: fs.created_ms ? new Date(fs.created_ms).toISOString() : '' },
    { mounts: fs.mounts.map((m) => `${m.host}:${m.path} (pid ${m.pid})`).join('\n') || '-' },
  );
  process.stdout.write(`${t.toString()}\n`);
}

export function register(program: Command): void {
  const fs = program.command('fs').description('create, list, inspect and delete filesystems');
  fs.command('create')
    .description('create a filesystem whose data lives in an S3 bucket')
    .argument('<name>', 'filesystem name ([a-zA-Z0-9_-], at most 63)')
    .requiredOption('--mds <addrs>', 'comma-separated MDS addresses')
    .requiredOption('--s3-endpoint <url>', 'S3 endpoint, e.g. http://127.0.0.1:9000')
    .requiredOption('--bucket <name>', 'bucket (must exist)')
    .option('--access-key <key>', 'S3 access key (default: AWS_ACCESS_KEY_ID)')
    .option('--secret-key-file <file>', 'file holding the S3 secret key (default: AWS_SECRET_ACCESS_KEY; never on the command line, where ps shows it)')
    .option('--secret-key <key>', 'the secret key on the command line, for existing scripts (ps shows it; warns)')
    .option('--region <region>', 'S3 region', 'us-east-1')
    .option('--block-size <size>', 'object block size (power of two, 64KiB..64MiB)', '4MiB')
    .option('--chunk-size <size>', 'chunk size (multiple of the block size, at most 1GiB)', '64MiB')
    .option('--key-prefix <prefix>', 'prefix of every object key', '')
    .option('--partitions <n>', 'initial metadata partitions (default: MDS config)')
    .option('--trash-days <days>', 'days a deleted file stays in the recycle bin /.trash (0 = off)', '1')
    .option('--json', 'print JSON')
    .action(
      action(async (name: string, o: { mds: string; s3Endpoint: string; bucket: string; accessKey?: string; secretKeyFile?: string; secretKey?: string; region: string; blockSize: string; chunkSize: string; keyPrefix: string; partitions?: string; trashDays: string; json?: boolean }) => {
        const accessKey = o.accessKey ?? process.env.AWS_ACCESS_KEY_ID;
        const secretKey = s3SecretFrom(o);
        if (!accessKey || !secretKey) {
          throw new TierfsError(StatusCode.INVALID_ARGUMENT, 'S3 credentials: give --access-key (or AWS_ACCESS_KEY_ID) and --secret-key-file (or AWS_SECRET_ACCESS_KEY)');
        }
        const trashDays = Number(o.trashDays);
        if (!Number.isFinite(trashDays) || trashDays < 0) throw new TierfsError(StatusCode.INVALID_ARGUMENT, `--trash-days "${o.trashDays}": expected a number of days >= 0`);
        const info = await withMds(o.mds, (client) => client.createFs({
          name, fs_type: 's3',
          s3: { endpoint: o.s3Endpoint, bucket: o.bucket, access_key: accessKey, secret_key: secretKey, region: o.region, key_prefix: o.keyPrefix },
          block_size: parseSize(o.blockSize, '--block-size'), chunk_size: parseSize(o.chunkSize, '--chunk-size'),
          partition_count: o.partitions ? Number(o.partitions) : 0, trash_days: trashDays,
        }));
        if (o.json) process.stdout.write(`${JSON.stringify(redacted(info))}\n`);
        else printFs(info);
      }),
    );
  fs.command('list')
    .description('list filesystems')
    .requiredOption('--mds <addrs>', 'comma-separated MDS addresses')
    .option('--json', 'print JSON')
    .action(
      action(async (o: { mds: string; json?: boolean }) => {
        const all = await withMds(o.mds, (client) => client.listFs());
        if (o.json) {
          process.stdout.write(`${JSON.stringify(all.map(redacted))}\n`);
          return;
        }
        const t = new Table({ head: ['id', 'name', 'status', 'bucket', 'block', 'chunk', 'used', 'inodes', 'mounts'] });
        for (const f of all) {
          t.push([f.fs_id, f.name, f.status, f.s3?.bucket ?? '', human(f.block_size), human(f.chunk_size), human(f.used_bytes), f.inode_count, f.mounts.length]);
        }
        process.stdout.write(`${t.toString()}\n`);
      }),
    );
  fs.command('info')
    .description('show one filesystem')
    .argument('<name>', 'filesystem name')
    .requiredOption('--mds <addrs>', 'comma-separated MDS addresses')
    .option('--json', 'print JSON')
    .action(
      action(async (name: string, o: { mds: string; json?: boolean }) => {
        const info = await withMds(o.mds, (client) => client.getFsInfo(name));
        if (o.json) process.stdout.write(`${JSON.stringify(redacted(info))}\n`);
        else printFs(info);
      }),
    );
  fs.command('delete')
    .description('delete a filesystem (refused while mounted); its objects are removed in the background')
    .argument('<name>', 'filesystem name')
    .requiredOption('--mds <addrs>', 'comma-separated MDS addresses')
    .option('--json', 'print JSON')
    .action(
      action(async (name: string, o: { mds: string; json?: boolean }) => {
        await withMds(o.mds, (client) => client.deleteFs(name));
        process.stdout.write(o.json ? `${JSON.stringify({ deleted: name })}\n` : `deleted filesystem ${name}\n`);
      }),
    );
}
