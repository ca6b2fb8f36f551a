// A real S3 server (s3rver) as a child process on a free loopback port.
import { join } from 'node:path';
import { spawnDaemon, type Spawned } from './process.js';
import { tempDir } from './tmp.js';
import { freePort } from './ports.js';

export interface TestS3 {
  endpoint: string;
  port: number;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  dir: string;
  proc: Spawned;
  /** Stops the server (SIGKILL when hard), keeping its data for a restart. */
  stop(hard?: boolean): Promise<void>;
  /** Starts it again on the same port and directory. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export async function startS3(bucket = 'tierfs-test'): Promise<TestS3> {
  const tmp = tempDir('tierfs-s3-');
  const port = await freePort();
  const args = ['s3server', '--dir', join(tmp.path, 'data'), '--port', String(port), '--bucket', bucket];
  const s3: TestS3 = {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    bucket,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    dir: tmp.path,
    proc: await spawnDaemon(args, { logFile: join(tmp.path, 's3.log') }),
    stop: (hard = false) => (hard ? s3.proc.kill9() : s3.proc.stop()),
    restart: async () => {
      s3.proc = await spawnDaemon(args, { logFile: join(tmp.path, 's3.log') });
    },
    close: async () => {
      await s3.proc.stop();
      tmp.remove();
    },
  };
  return s3;
}
