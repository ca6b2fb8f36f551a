// The embedded S3 server (s3rver) used by `tierfs up` on a single machine and by tests.
// It speaks the S3 protocol over HTTP, so the data path is the same as against MinIO.
import S3rver from 's3rver';
import { mkdirSync } from 'node:fs';

export interface EmbeddedS3Options {
  dir: string;
  host?: string;
  port?: number;
  buckets?: string[];
}

export interface EmbeddedS3 {
  readonly endpoint: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Credentials s3rver accepts (it checks SigV4 against this fixed pair). */
export const EMBEDDED_ACCESS_KEY = 'S3RVER';
export const EMBEDDED_SECRET_KEY = 'S3RVER';

export async function startEmbeddedS3(opts: EmbeddedS3Options): Promise<EmbeddedS3> {
  mkdirSync(opts.dir, { recursive: true });
  const host = opts.host ?? '127.0.0.1';
  const server = new S3rver({
    address: host,
    port: opts.port ?? 0,
    directory: opts.dir,
    silent: true,
    configureBuckets: (opts.buckets ?? []).map((name) => ({ name })),
  });
  const { port } = await server.run();
  return { endpoint: `http://${host}:${port}`, port, close: () => server.close() };
}
