// Test-only entry: mounts the gateway over the in-memory MetaClient and FileData in a child
// process, so tests exercise the real kernel -> fuse/ server -> VFS path. Usage: node memory-mount.js MOUNTPOINT ADMIN_SOCKET [ATTR_TIMEOUT_S]
import { announceReady } from '../../../cli/ready.js';
import { createLogger } from '../../../common/log.js';
import { startGateway } from '../../../gateway/mount.js';
import { removeMountRecord, writeMountRecord } from '../../../gateway/mount-registry.js';
import { MemoryFileData } from './memory-file-data.js';
import { MemoryMetaClient } from './memory-meta.js';

const [mountpoint, adminSocket, timeoutArg] = process.argv.slice(2);
if (!mountpoint || !adminSocket) {
  process.stderr.write('usage: memory-mount MOUNTPOINT ADMIN_SOCKET [ATTR_TIMEOUT_S]\n');
  process.exit(2);
}
const timeoutSec = Number(timeoutArg ?? '1');
const log = createLogger('gateway-test');
const meta = new MemoryMetaClient();
const data = new MemoryFileData();
// Simulates a data path whose storage is gone: flushAll never finishes (shutdown must still end).
if (process.env.TIERFS_TEST_HANG_FLUSHALL === '1') data.flushAll = () => new Promise<void>(() => {});
// Simulates storage that answers reads or writes only after a long wait (the deadline's subject).
function delayed<A extends unknown[], R>(fn: (...args: A) => Promise<R>, ms: number): (...args: A) => Promise<R> {
  return async (...args) => {
    await new Promise((r) => setTimeout(r, ms));
    return fn(...args);
  };
}
const slowReadMs = Number(process.env.TIERFS_TEST_SLOW_READ_MS ?? 0);
if (slowReadMs > 0) data.readInto = delayed(data.readInto.bind(data), slowReadMs);
const slowWriteMs = Number(process.env.TIERFS_TEST_SLOW_WRITE_MS ?? 0);
if (slowWriteMs > 0) data.write = delayed(data.write.bind(data), slowWriteMs);
const gateway = await startGateway(
  { meta, data, describe: () => ({ metaInodes: meta.inodeCount(), metaCalls: Object.fromEntries(meta.calls) }) },
  {
    mountpoint,
    adminSocket,
    fs: { attrTimeoutMs: timeoutSec * 1000, entryTimeoutMs: timeoutSec * 1000, deleteOrphanData: true, dirPageSize: 64 },
    fuse: { allowOther: process.env.TIERFS_TEST_ALLOW_OTHER === '1', writebackCache: process.env.TIERFS_TEST_WRITEBACK_CACHE === '1' },
    shutdownStepTimeoutMs: Number(process.env.TIERFS_TEST_STEP_TIMEOUT_MS ?? 10_000),
    logger: log,
    onUmountRequest: () => void stop('admin umount'),
  },
);
async function stop(reason: string): Promise<void> {
  const r = await gateway.shutdown(reason);
  removeMountRecord(mountpoint!);
  process.exit(r.clean ? 0 : 1);
}
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));
writeMountRecord({ mountpoint, pid: process.pid, adminSocket });
announceReady({ mountpoint, pid: process.pid, adminSocket });
