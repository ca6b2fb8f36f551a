// The conformance suite on a mount of real parts: metaserver over gRPC + level, S3Adaptor
// with a disk cache over a real S3 server (s3rver). Same cases as test/gateway/conformance,
// split over two test files to keep each under a minute.
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe } from 'node:test';
import { spawnProcess, type Spawned } from '../../../support/process.js';
import { startS3, type TestS3 } from '../../../support/s3.js';
import { tempDir } from '../../../support/tmp.js';
import { registerConformanceSuite } from '../../../gateway/conformance/suite.js';
import { forceUnmount } from '../../../gateway/support/mounted.js';

const entry = join(dirname(fileURLToPath(import.meta.url)), 'real-parts-mount.js');

export function realPartsConformance(part: 'fixed' | 'random'): void {
  describe(`gateway conformance (${part}) over real parts (metaserver gRPC, S3Adaptor + disk cache, s3rver, FUSE)`, () => {
    let s3: TestS3 | undefined;
    let proc: Spawned | undefined;
    const tmp = tempDir('tierfs-gw-e2e-');
    const mountpoint = join(tmp.path, 'mnt');
    before(async () => {
      mkdirSync(mountpoint);
      s3 = await startS3('tierfs-gw-e2e');
      proc = await spawnProcess(process.execPath, [entry, mountpoint, join(tmp.path, 'admin.sock'), s3.endpoint, s3.bucket, join(tmp.path, 'cache'), 'writeback'], {
        logFile: join(tmp.path, 'gateway.log'), readyTimeoutMs: 60_000,
      }).catch((err: unknown) => {
        forceUnmount(mountpoint);
        throw err;
      });
    });
    after(async () => {
      await proc?.stop(30_000).catch(() => {});
      forceUnmount(mountpoint);
      await s3?.close();
      tmp.remove();
    });
    registerConformanceSuite({ mountDir: () => mountpoint, seeds: [11, 12, 13], opsPerSeed: 100, only: process.env.TIERFS_CONFORMANCE_ONLY, part, exclude: /large directory/ });
  });
}
