// ObjectStore: the one narrow door to S3 (put, ranged get, head, delete, list), over
// @aws-sdk/client-s3 with path-style addressing, per-attempt timeouts, retries with
// backoff, bounded concurrency (p-queue) and request metrics. Works against s3rver and MinIO.
import { Agent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Readable } from 'node:stream';
import {
  S3Client,
  PutObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  ListObjectsCommand,
  CreateBucketCommand,
  HeadBucketCommand,
} from '@aws-sdk/client-s3';
import PQueue from 'p-queue';
import type { Registry } from 'prom-client';
import { silentLogger, type Logger } from '../common/log.js';
import { StatusCode, TierfsError } from '../common/status.js';
import { counter, histogram } from '../diskcache/metrics-util.js';

export interface ObjectInfo {
  key: string;
  size: number;
}

export interface ListPage {
  objects: ObjectInfo[];
  /** Pass as `marker` for the next page; null when done. */
  nextMarker: string | null;
}

export interface ObjectStoreStats {
  requests: number;
  errors: number;
  retries: number;
  inFlight: number;
  queued: number;
  bytesPut: number;
  bytesGot: number;
}

export interface ObjectStore {
  /** Must not keep `body` once the promise settles: callers reuse the memory (page pools). */
  put(key: string, body: Buffer): Promise<void>;
  /** Whole object, or `length` bytes from `offset` (inclusive HTTP range). NOT_FOUND when missing. */
  get(key: string, offset?: number, length?: number): Promise<Buffer>;
  head(key: string): Promise<ObjectInfo | null>;
  /** Deleting a missing key succeeds (idempotent). */
  delete(key: string): Promise<void>;
  /** Batch delete (1000 keys per request); idempotent. */
  deleteMany(keys: string[]): Promise<void>;
  /** One page of keys under `prefix` (relative to the store's key prefix), in key order. */
  list(prefix: string, marker?: string, maxKeys?: number): Promise<ListPage>;
  /** Creates the bucket if it does not exist. */
  ensureBucket(): Promise<void>;
  stats(): ObjectStoreStats;
  close(): void;
}

export interface ObjectStoreOptions {
  endpoint: string;
  region?: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Prepended to every key (one filesystem per prefix); invisible to callers. */
  keyPrefix?: string;
  /** Per attempt. */
  timeoutMs?: number;
  maxAttempts?: number;
  /** Requests in flight at once; more wait in a queue. */
  concurrency?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  registry?: Registry;
  logger?: Logger;
}

type Op = 'put' | 'get' | 'head' | 'delete' | 'delete_many' | 'list' | 'bucket';

interface S3ErrorShape {
  name?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

function httpStatus(err: unknown): number | undefined {
  return (err as S3ErrorShape | null)?.$metadata?.httpStatusCode;
}

function isNotFound(err: unknown): boolean {
  const e = err as S3ErrorShape | null;
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.Code === 'NoSuchKey' || httpStatus(err) === 404;
}

/** Client errors other than throttling will not heal by retrying. */
function isRetryable(err: unknown): boolean {
  if (isNotFound(err)) return false;
  const status = httpStatus(err);
  if (status === undefined) return true; // network error, timeout, connection refused
  return status >= 500 || status === 429 || status === 408;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function readBody(body: Readable, expected: number | undefined): Promise<Buffer> {
  // One copy: stream chunks straight into a buffer of the announced length.
  if (expected !== undefined) {
    const out = Buffer.allocUnsafe(expected);
    let at = 0;
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (at + chunk.length > expected) throw new Error(`body longer than Content-Length ${expected}`);
      chunk.copy(out, at);
      at += chunk.length;
    }
    if (at !== expected) throw new Error(`body ended at ${at} of ${expected} bytes`);
    return out;
  }
  const parts: Buffer[] = [];
  for await (const chunk of body as AsyncIterable<Buffer>) parts.push(chunk);
  return Buffer.concat(parts);
}

/**
 * Signs a put without hashing its body (x-amz-content-sha256: UNSIGNED-PAYLOAD, which S3,
 * MinIO and s3rver accept): SigV4 over http otherwise SHA-256es every block on the event loop
 * (~2 ms per MiB), stalling the FUSE requests queued behind it. Length is still checked.
 */
function unsignedPayload(cmd: PutObjectCommand): PutObjectCommand {
  cmd.middlewareStack.add(
    (next) => async (args) => {
      const req = args.request as { headers?: Record<string, string> };
      if (req.headers) req.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      return next(args);
    },
    { step: 'build', name: 'tierfsUnsignedPayload' },
  );
  return cmd;
}

export class S3ObjectStore implements ObjectStore {
  private readonly client: S3Client;
  private readonly queue: PQueue;
  private readonly prefix: string;
  private readonly timeoutMs: number;
  private readonly maxAttempts: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly log: Logger;
  private readonly agent: Agent;
  private readonly counts = { requests: 0, errors: 0, retries: 0, bytesPut: 0, bytesGot: 0 };
  private readonly seconds;
  private readonly errorsTotal;
  private readonly bytesTotal;

  constructor(private readonly opts: ObjectStoreOptions) {
    const concurrency = opts.concurrency ?? 16;
    this.prefix = opts.keyPrefix ?? '';
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.maxAttempts = Math.max(1, opts.maxAttempts ?? 5);
    this.retryBaseMs = opts.retryBaseMs ?? 100;
    this.retryMaxMs = opts.retryMaxMs ?? 5_000;
    this.log = opts.logger ?? silentLogger;
    this.queue = new PQueue({ concurrency });
    const agentOpts = { keepAlive: true, maxSockets: concurrency + 4 };
    this.agent = opts.endpoint.startsWith('https:') ? new HttpsAgent(agentOpts) : new Agent(agentOpts);
    this.client = new S3Client({
      endpoint: opts.endpoint,
      region: opts.region ?? 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey },
      // s3rver and MinIO reject or mis-handle the SDK's default CRC checksums.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 1, // retries are ours, so metrics and backoff see every attempt
      requestHandler: {
        connectionTimeout: Math.min(this.timeoutMs, 5_000),
        requestTimeout: this.timeoutMs,
        ...(opts.endpoint.startsWith('https:') ? { httpsAgent: this.agent as HttpsAgent } : { httpAgent: this.agent }),
      },
    });
    this.seconds = histogram(opts.registry, 'tierfs_s3_request_seconds', 'S3 request latency by operation', ['op'], [
      0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
    ]);
    this.errorsTotal = counter(opts.registry, 'tierfs_s3_request_errors_total', 'failed S3 request attempts by operation', ['op']);
    this.bytesTotal = counter(opts.registry, 'tierfs_s3_bytes_total', 'bytes moved to/from S3 by operation', ['op']);
  }

  private key(k: string): string {
    return this.prefix + k;
  }

  /** Runs one request through the concurrency queue, retrying transient failures with backoff. */
  private async run<T>(op: Op, what: string, attempt: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return this.queue.add(async () => {
      for (let n = 1; ; n++) {
        const ctl = new AbortController();
        const timer = setTimeout(() => ctl.abort(), this.timeoutMs);
        const end = this.seconds.startTimer({ op });
        this.counts.requests++;
        try {
          return await attempt(ctl.signal);
        } catch (err) {
          if (isNotFound(err)) throw new TierfsError(StatusCode.NOT_FOUND, `S3 ${op} ${what}: no such object`);
          this.counts.errors++;
          this.errorsTotal.inc({ op });
          const msg = ctl.signal.aborted ? `timed out after ${this.timeoutMs} ms` : err instanceof Error ? err.message || err.name : String(err);
          if (n >= this.maxAttempts || !isRetryable(err)) {
            const code = ctl.signal.aborted ? StatusCode.TIMEOUT : StatusCode.UNAVAILABLE;
            throw new TierfsError(code, `S3 ${op} ${what} at ${this.opts.endpoint}/${this.opts.bucket} failed after ${n} attempt(s): ${msg}`);
          }
          this.counts.retries++;
          const delay = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** (n - 1)) * (0.5 + Math.random() / 2);
          this.log.debug({ op, key: what, attempt: n, delay, err: msg }, 'S3 request failed, retrying');
          await sleep(delay);
        } finally {
          clearTimeout(timer);
          end();
        }
      }
    });
  }

  async put(key: string, body: Buffer): Promise<void> {
    await this.run('put', key, (abortSignal) =>
      this.client.send(unsignedPayload(new PutObjectCommand({ Bucket: this.opts.bucket, Key: this.key(key), Body: body, ContentLength: body.length })), { abortSignal }),
    );
    this.counts.bytesPut += body.length;
    this.bytesTotal.inc({ op: 'put' }, body.length);
  }

  async get(key: string, offset?: number, length?: number): Promise<Buffer> {
    if (length === 0) return Buffer.alloc(0);
    const range = offset !== undefined ? `bytes=${offset}-${length !== undefined ? offset + length - 1 : ''}` : undefined;
    const data = await this.run('get', key, async (abortSignal) => {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.opts.bucket, Key: this.key(key), Range: range }), { abortSignal });
      return readBody(res.Body as Readable, res.ContentLength);
    });
    this.counts.bytesGot += data.length;
    this.bytesTotal.inc({ op: 'get' }, data.length);
    return data;
  }

  async head(key: string): Promise<ObjectInfo | null> {
    try {
      const res = await this.run('head', key, (abortSignal) =>
        this.client.send(new HeadObjectCommand({ Bucket: this.opts.bucket, Key: this.key(key) }), { abortSignal }),
      );
      return { key, size: res.ContentLength ?? 0 };
    } catch (err) {
      if (err instanceof TierfsError && err.code === StatusCode.NOT_FOUND) return null;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.run('delete', key, (abortSignal) =>
        this.client.send(new DeleteObjectCommand({ Bucket: this.opts.bucket, Key: this.key(key) }), { abortSignal }),
      );
    } catch (err) {
      if (!(err instanceof TierfsError && err.code === StatusCode.NOT_FOUND)) throw err;
    }
  }

  async deleteMany(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      const res = await this.run('delete_many', `${batch.length} keys`, (abortSignal) =>
        this.client.send(
          new DeleteObjectsCommand({ Bucket: this.opts.bucket, Delete: { Objects: batch.map((k) => ({ Key: this.key(k) })), Quiet: true } }),
          { abortSignal },
        ),
      );
      const failed = (res.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length > 0) {
        throw new TierfsError(StatusCode.UNAVAILABLE, `S3 batch delete: ${failed.length} keys failed, first ${failed[0]!.Key}: ${failed[0]!.Code} ${failed[0]!.Message ?? ''}`);
      }
    }
  }

  async list(prefix: string, marker?: string, maxKeys = 1000): Promise<ListPage> {
    // ListObjects v1 with markers: s3rver's v2 continuation tokens are unreliable.
    const res = await this.run('list', prefix, (abortSignal) =>
      this.client.send(
        new ListObjectsCommand({ Bucket: this.opts.bucket, Prefix: this.key(prefix), Marker: marker !== undefined ? this.key(marker) : undefined, MaxKeys: maxKeys }),
        { abortSignal },
      ),
    );
    const objects = (res.Contents ?? []).map((o) => ({ key: (o.Key ?? '').slice(this.prefix.length), size: o.Size ?? 0 }));
    const last = objects.at(-1)?.key;
    return { objects, nextMarker: res.IsTruncated && last !== undefined ? last : null };
  }

  async ensureBucket(): Promise<void> {
    try {
      await this.run('bucket', this.opts.bucket, (abortSignal) => this.client.send(new HeadBucketCommand({ Bucket: this.opts.bucket }), { abortSignal }));
    } catch (err) {
      if (!(err instanceof TierfsError && err.code === StatusCode.NOT_FOUND)) throw err;
      await this.run('bucket', this.opts.bucket, (abortSignal) => this.client.send(new CreateBucketCommand({ Bucket: this.opts.bucket }), { abortSignal }));
    }
  }

  stats(): ObjectStoreStats {
    return { ...this.counts, inFlight: this.queue.pending, queued: this.queue.size };
  }

  close(): void {
    this.queue.clear();
    this.client.destroy();
    this.agent.destroy();
  }
}

export function createObjectStore(opts: ObjectStoreOptions): ObjectStore {
  return new S3ObjectStore(opts);
}

/** Every object under `prefix`, page by page. */
export async function* listAll(store: ObjectStore, prefix: string): AsyncGenerator<ObjectInfo> {
  let marker: string | undefined;
  for (;;) {
    const page = await store.list(prefix, marker);
    yield* page.objects;
    if (page.nextMarker === null) return;
    marker = page.nextMarker;
  }
}
