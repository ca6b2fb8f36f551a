// `tierfs volume create|list|info|extend|delete|recover|attach|detach`: block volumes on the
// chunkservers. `attach` starts a detached `tierfs volume serve` (the block client behind a
// one-file FUSE mount), puts the file on a loop device with direct I/O and prints the
// device as its last line; `detach` flushes, detaches the loop device and stops the server.
import type { Command } from 'commander';
import Table from 'cli-table3';
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { MdsClient, type VolumeInfo } from '../../mds/client.js';
import { StatusCode, TierfsError } from '../../common/status.js';
import { loadState } from '../cluster-state.js';
import { isAlive, launchDaemon, stopPid } from '../launcher.js';
import { ensureUnmounted } from '../cluster-ops.js';
import { action } from '../errors.js';
import { clusterKeyFileInUse } from '../cluster-auth.js';
import { human, parseSize } from './fs.js';
import { announceReady } from '../ready.js';

interface Where {
  dataDir: string;
  mds?: string;
  json?: boolean;
}

/** How the block client acknowledges writes (blockclient/volume-client.ts). */
interface CacheFlags {
  cache: string;
  cacheMaxDirty: string;
}

function cacheOptions(o: CacheFlags): { cache: 'writeback' | 'writethrough'; maxDirtyBytes: number } {
  if (o.cache !== 'writeback' && o.cache !== 'writethrough') throw new TierfsError(StatusCode.INVALID_ARGUMENT, `--cache must be writeback or writethrough, not "${o.cache}"`);
  const maxDirtyBytes = parseSize(o.cacheMaxDirty, '--cache-max-dirty');
  if (maxDirtyBytes < 1 << 20) throw new TierfsError(StatusCode.INVALID_ARGUMENT, `--cache-max-dirty must be at least 1MiB, not ${o.cacheMaxDirty}`);
  return { cache: o.cache, maxDirtyBytes };
}

function withCacheOptions(cmd: Command): Command {
  return cmd
    .option('--cache <mode>', 'writeback: a write is acknowledged once queued and fsync/FLUSH waits for a Raft majority (a disk\'s volatile cache); writethrough: every write waits for a Raft majority', 'writeback')
    .option('--cache-max-dirty <size>', 'bytes written but not yet on a Raft majority, at most', '64MiB');
}

/** A volume attached on this host: what `detach` and `down` need. */
export interface AttachRecord {
  name: string;
  device: string;
  pid: number;
  mountpoint: string;
  log: string;
}

function mdsAddresses(o: Where): string[] {
  if (o.mds) return o.mds.split(',').map((s) => s.trim()).filter(Boolean);
  const state = loadState(resolve(o.dataDir));
  if (!state) throw new TierfsError(StatusCode.INVALID_ARGUMENT, `no cluster in ${resolve(o.dataDir)}; give --mds ADDRS or the --data-dir of tierfs up`);
  return state.mdsAddresses;
}

async function withMds<T>(o: Where, fn: (c: MdsClient) => Promise<T>): Promise<T> {
  const c = new MdsClient(mdsAddresses(o), { deadlineMs: 15_000 });
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}


function printVolume(v: VolumeInfo, json?: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(v)}\n`);
    return;
  }
  const t = new Table();
  t.push(
    { name: v.name }, { id: String(v.id) }, { status: v.status }, { size: human(Number(v.size)) },
    { 'allocated segments': `${v.allocated_segments} of ${Math.ceil(Number(v.size) / Number(v.segment_size))} (${human(Number(v.segment_size))} each)` },
    { 'chunk size': human(Number(v.chunk_size)) }, { pool: v.pool }, { copysets: v.copysets.join(' ') || '-' },
    { attached: v.opens.map((o) => `${o.host} pid ${o.pid}${o.read_only ? ' (read-only)' : ''}`).join('\n') || '-' },
    { created: new Date(Number(v.created_ms)).toISOString() },
  );
  if (v.status === 'DELETED') t.push({ 'purged at': new Date(Number(v.purge_at_ms)).toISOString() });
  process.stdout.write(`${t.toString()}\n`);
}

export function attachDir(dataDir: string): string {
  return join(resolve(dataDir), 'volumes');
}

export function attachRecords(dataDir: string): AttachRecord[] {
  const dir = attachDir(dataDir);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((n) => n.endsWith('.json'))
    .map((n) => JSON.parse(readFileSync(join(dir, n), 'utf8')) as AttachRecord);
}

function isMountedDevice(device: string): boolean {
  return readFileSync('/proc/mounts', 'utf8').split('\n').some((l) => l.split(' ')[0] === device);
}

/** The file behind a loop device ("" when detached): a recorded device may have been reused since. */
function backingFile(device: string): string {
  try {
    return readFileSync(`/sys/block/${device.split('/').pop()}/loop/backing_file`, 'utf8').trim();
  } catch {
    return '';
  }
}

function fsyncFile(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Flushes, detaches the loop device (if it is still ours), stops the volume's server. */
export async function detachVolume(dataDir: string, rec: AttachRecord, say: (l: string) => void): Promise<void> {
  if (rec.device && existsSync(rec.device) && backingFile(rec.device) === join(rec.mountpoint, 'volume')) {
    if (isMountedDevice(rec.device)) throw new TierfsError(StatusCode.BUSY, `${rec.device} (volume ${rec.name}) is mounted; unmount it first`);
    try {
      execFileSync('blockdev', ['--flushbufs', rec.device], { stdio: 'ignore' });
    } catch {
      /* not attached any more */
    }
    // An fsync of the volume file reaches the server as FSYNC: with a write-back cache it
    // returns once every write is on a Raft majority (blockdev --flushbufs sends no flush).
    if (isAlive(rec.pid)) fsyncFile(join(rec.mountpoint, 'volume'));
    try {
      execFileSync('losetup', ['-d', rec.device], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      const msg = (err as { stderr?: Buffer }).stderr?.toString().trim() ?? String(err);
      if (!/No such device/.test(msg)) throw new TierfsError(StatusCode.BUSY, `losetup -d ${rec.device}: ${msg}`);
    }
  }
  // The loop driver lets go of the file asynchronously; the server's unmount waits for it.
  await stopPid(rec.pid, 30_000);
  await ensureUnmounted(rec.mountpoint).catch(() => undefined);
  rmSync(join(attachDir(dataDir), `${rec.name}.json`), { force: true });
  say(`detached volume ${rec.name} from ${rec.device}`);
}

async function attach(name: string, o: Where & CacheFlags & { readOnly?: boolean }): Promise<void> {
  cacheOptions(o); // bad values fail here, not in the server's log
  const dir = attachDir(o.dataDir);
  const mountpoint = join(dir, name);
  mkdirSync(mountpoint, { recursive: true });
  const known = attachRecords(o.dataDir).find((r) => r.name === name);
  if (known && isAlive(known.pid)) throw new TierfsError(StatusCode.BUSY, `volume ${name} is already attached here as ${known.device}`);
  await ensureUnmounted(mountpoint);
  const log = join(dir, `${name}.log`);
  const args = ['volume', 'serve', name, '--mds', mdsAddresses(o).join(','), '--mountpoint', mountpoint];
  if (o.readOnly) args.push('--read-only');
  args.push('--cache', o.cache, '--cache-max-dirty', o.cacheMaxDirty);
  // The block client is a process of its own: it needs the key this command found.
  const keyFile = clusterKeyFileInUse();
  if (keyFile) args.push('--cluster-key-file', resolve(keyFile));
  let pid: number;
  try {
    pid = (await launchDaemon(`volume ${name}`, args, log, 60_000)).pid;
  } catch (err) {
    // The server's own error line (e.g. "tierfs: BUSY: volume ... is already attached") says it best.
    const m = /tierfs: ([A-Z_]+): (.*)/.exec(String((err as Error).message));
    if (m) throw new TierfsError(m[1] as StatusCode, m[2]!);
    throw err;
  }
  const file = join(mountpoint, 'volume');
  let device: string;
  try {
    device = execFileSync('losetup', ['--direct-io=on', '--sector-size', '4096', ...(o.readOnly ? ['--read-only'] : []), '--show', '-f', file], { encoding: 'utf8' }).trim();
  } catch (err) {
    await stopPid(pid);
    throw new TierfsError(StatusCode.UNAVAILABLE, `losetup of ${file} failed: ${String((err as { stderr?: string }).stderr ?? err)}`);
  }
  const rec: AttachRecord = { name, device, pid, mountpoint, log };
  writeFileSync(join(dir, `${name}.json`), JSON.stringify(rec, null, 2));
  if (o.json) process.stdout.write(`${JSON.stringify(rec)}\n`);
  else process.stdout.write(`attached volume ${name} (server pid ${pid}, log ${log})\n${device}\n`);
}

/** `tierfs volume serve`: the block client behind the FUSE file, in the foreground (attach starts it). */
async function serve(name: string, o: CacheFlags & { mds: string; mountpoint: string; readOnly?: boolean }): Promise<void> {
  const { VolumeClient } = await import('../../blockclient/volume-client.js');
  const { VolumeFileFs } = await import('../../blockclient/fuse-volume.js');
  const { mountFuse } = await import('../../fuse/index.js');
  const mds = new MdsClient(o.mds);
  const volume = await VolumeClient.open(mds, name, { readOnly: o.readOnly, ...cacheOptions(o) });
  mkdirSync(o.mountpoint, { recursive: true });
  await ensureUnmounted(o.mountpoint);
  const session = await mountFuse(o.mountpoint, new VolumeFileFs(volume), {
    fsname: `tierfs-volume:${name}`, subtype: 'tierfs-volume', readOnly: o.readOnly, concurrency: 32,
  });
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await session.unmount({ lazy: true }).catch(() => undefined);
    await volume.close();
    mds.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
  void session.closed.then(() => stop());
  announceReady({ volume: name, file: join(o.mountpoint, 'volume'), size: volume.size });
}

export function register(program: Command): void {
  const vol = program.command('volume').description('block volumes on chunkservers: create, list, info, extend, delete, recover, attach, detach');
  const where = (c: Command) => c
    .option('--data-dir <dir>', 'the data dir of a cluster started by tierfs up', '.tierfs')
    .option('--mds <addrs>', 'MDS addresses (instead of --data-dir)')
    .option('--json', 'print JSON');

  where(vol.command('create').description('create a volume (space is allocated on first write)').argument('<name>').requiredOption('--size <size>', 'e.g. 10GiB')
    .option('--pool <pool>', 'chunkserver pool', 'default'))
    .action(action(async (name: string, o: Where & { size: string; pool: string }) => {
      printVolume(await withMds(o, (c) => c.createVolume(name, parseSize(o.size, '--size'), o.pool)), o.json);
    }));
  where(vol.command('list').description('list volumes (also those in the recycle bin)'))
    .action(action(async (o: Where) => {
      const all = await withMds(o, (c) => c.listVolumes());
      if (o.json) {
        process.stdout.write(`${JSON.stringify(all)}\n`);
        return;
      }
      const t = new Table({ head: ['name', 'id', 'status', 'size', 'segments', 'attached'] });
      for (const v of all) t.push([v.name, v.id, v.status, human(Number(v.size)), v.allocated_segments, v.opens.map((x) => `${x.host}:${x.pid}`).join(' ') || '-']);
      process.stdout.write(`${t.toString()}\n`);
    }));
  where(vol.command('info').description('show a volume: size, allocated segments, copysets').argument('<name>'))
    .action(action(async (name: string, o: Where) => printVolume(await withMds(o, (c) => c.getVolume(name)), o.json)));
  where(vol.command('extend').description('grow a volume').argument('<name>').requiredOption('--size <size>', 'the new size'))
    .action(action(async (name: string, o: Where & { size: string }) => {
      printVolume(await withMds(o, (c) => c.extendVolume(name, parseSize(o.size, '--size'))), o.json);
    }));
  where(vol.command('delete').description('move a volume to the recycle bin (refused while attached)').argument('<name>'))
    .action(action(async (name: string, o: Where) => printVolume(await withMds(o, (c) => c.deleteVolume(name)), o.json)));
  where(vol.command('recover').description('take a volume back from the recycle bin').argument('<name>'))
    .action(action(async (name: string, o: Where) => printVolume(await withMds(o, (c) => c.recoverVolume(name)), o.json)));
  where(withCacheOptions(vol.command('attach').description('attach a volume as a block device; prints the device as the last line').argument('<name>')
    .option('--read-only', 'attach read-only')))
    .action(action(async (name: string, o: Where & CacheFlags & { readOnly?: boolean }) => attach(name, o)));
  where(vol.command('detach').description('flush and detach a volume (by name or device)').argument('<name|device>'))
    .action(action(async (what: string, o: Where) => {
      const rec = attachRecords(o.dataDir).find((r) => r.name === what || r.device === what);
      if (!rec) throw new TierfsError(StatusCode.NOT_FOUND, `no attached volume or device "${what}" in ${attachDir(o.dataDir)}`);
      await detachVolume(o.dataDir, rec, (l) => process.stdout.write(o.json ? `${JSON.stringify({ detached: rec.name, device: rec.device })}\n` : `${l}\n`));
    }));
  where(withCacheOptions(vol.command('nbd').description('serve a volume over NBD on a unix socket in the foreground (for nbd-client -unix SOCKET /dev/nbdN)').argument('<name>')
    .requiredOption('--socket <path>', 'unix socket to listen on').option('--read-only', 'attach read-only')))
    .action(action(async (name: string, o: Where & CacheFlags & { socket: string; readOnly?: boolean }) => {
      const { VolumeClient } = await import('../../blockclient/volume-client.js');
      const { startNbdServer } = await import('../../blockclient/nbd-server.js');
      const mds = new MdsClient(mdsAddresses(o));
      const volume = await VolumeClient.open(mds, name, { readOnly: o.readOnly, ...cacheOptions(o) });
      const server = await startNbdServer(resolve(o.socket), volume, name);
      const stop = async () => {
        await server.close();
        await volume.close();
        mds.close();
        process.exit(0);
      };
      process.on('SIGTERM', () => void stop());
      process.on('SIGINT', () => void stop());
      process.stdout.write(`serving volume ${name} over NBD on ${server.path} (export "${name}")\n`);
      announceReady({ volume: name, socket: server.path });
    }));
  withCacheOptions(vol.command('serve', { hidden: true }).description('serve an attached volume (started by attach)').argument('<name>')
    .requiredOption('--mds <addrs>', 'MDS addresses').requiredOption('--mountpoint <dir>', 'where the one-file FUSE mount goes')
    .option('--read-only', 'read-only'))
    .action(action(async (name: string, o: CacheFlags & { mds: string; mountpoint: string; readOnly?: boolean }) => serve(name, o)));
}
