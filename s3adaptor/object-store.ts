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
  CreateMultipartUploadCommand,
  UploadPartCommand,
  CompleteMultipartUploadCommand,
  AbortMultipartUploadCommand,
} from '@aws-sdk/client-s3';
import PQueue from 'p-queue';
import type { Registry } from 'prom-client';
import { silentLogger, type Logger } from '../common/log.js';
import { StatusCode, TierfsError } from '../common/status.js';
import { counter, histogram } from '../diskcache/metrics-util.js';

export interface ObjectInfo {
  key: string;
  size: number;
  /** From listings (S3 LastModified), when the server gave it. */
  lastModifiedMs?: number;
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
  /** Objects (or ranges) read and objects written, successful calls only: GET and PUT split for `tierfs stats`. */
  gets: number;
  puts: number;
}

/** Per-request options. */
export interface RequestOptions {
  /**
   * The request (queueing, every attempt and the waits between them) fails with UNAVAILABLE
   * (EIO) once this many ms have passed; an attempt in flight then is aborted.
   */
  deadlineMs?: number;
}

export interface ObjectStore {
  /** Must not keep `body` once the promise settles: callers reuse the memory (page pools). */
  put(key: string, body: Buffer, opts?: RequestOptions): Promise<void>;
  /** Whole object, or `length` bytes from `offset` (inclusive HTTP range). NOT_FOUND when missing. */
  get(key: string, offset?: number, length?: number, opts?: RequestOptions): Promise<Buffer>;
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
  /** Objects of at least this many bytes go up in parts (default 16 MiB). */
  multipartThresholdBytes?: number;
  /** Part size of multipart uploads (default 8 MiB; S3 requires at least 5 MiB but for the last). */
  partSizeBytes?: number;
  registry?: Registry;
  logger?: Logger;
}

/** S3's smallest allowed part (all parts but the last). */
export const MIN_PART_BYTES = 5 * 2 ** 20;

type Op = 'put' | 'get' | 'head' | 'delete' | 'delete_many' | 'list' | 'bucket' | 'multipart' | 'put_part';

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
  private readonly multipartThreshold: number;
  private readonly partSize: number;
  private readonly log: Logger;
  private readonly agent: Agent;
  private readonly counts = { requests: 0, errors: 0, retries: 0, bytesPut: 0, bytesGot: 0, gets: 0, puts: 0 };
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
    this.partSize = opts.partSizeBytes ?? 8 * 2 ** 20;
    this.multipartThreshold = opts.multipartThresholdBytes ?? 16 * 2 ** 20;
    if (this.partSize < MIN_PART_BYTES) {
      throw new TierfsError(StatusCode.INVALID_ARGUMENT, `S3 part size ${this.partSize} is below the ${MIN_PART_BYTES} bytes S3 requires`);
    }
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

  /**
   * Runs one request through the concurrency queue, retrying transient failures with backoff.
   * With a deadline, the whole of it (queue wait included) ends by then: UNAVAILABLE (EIO).
   */
  private async run<T>(op: Op, what: string, attempt: (signal: AbortSignal) => Promise<T>, deadlineMs?: number): Promise<T> {
    const deadline = deadlineMs !== undefined ? Date.now() + Math.max(0, deadlineMs) : Infinity;
    const late = () => new TierfsError(StatusCode.UNAVAILABLE, `S3 ${op} ${what} at ${this.opts.endpoint}/${this.opts.bucket}: no answer within ${deadlineMs} ms`);
    const task = this.queue.add(async () => {
      for (let n = 1; ; n++) {
        if (Date.now() >= deadline) throw late();
        const ctl = new AbortController();
        const timer = setTimeout(() => ctl.abort(), Math.min(this.timeoutMs, deadline - Date.now()));
        const end = this.seconds.startTimer({ op });
        this.counts.requests++;
        try {
          return await attempt(ctl.signal);
        } catch (err) {
          if (isNotFound(err)) throw new TierfsError(StatusCode.NOT_FOUND, `S3 ${op} ${what}: no such object`);
          this.counts.errors++;
          this.errorsTotal.inc({ op });
          const msg = ctl.signal.aborted ? `timed out after ${this.timeoutMs} ms` : err instanceof Error ? err.message || err.name : String(err);
          if (Date.now() >= deadline) throw late();
          if (n >= this.maxAttempts || !isRetryable(err)) {
            const code = ctl.signal.aborted ? StatusCode.TIMEOUT : StatusCode.UNAVAILABLE;
            throw new TierfsError(code, `S3 ${op} ${what} at ${this.opts.endpoint}/${this.opts.bucket} failed after ${n} attempt(s): ${msg}`);
          }
          this.counts.retries++;
          const delay = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** (n - 1)) * (0.5 + Math.random() / 2);
          this.log.debug({ op, key: what, attempt: n, delay, err: msg }, 'S3 request failed, retrying');
          await sleep(Math.min(delay, Math.max(0, deadline - Date.now())));
        } finally {
          clearTimeout(timer);
          end();
        }
      }
    });
    if (deadline === Infinity) return task;
    // The queue may hold the request past its deadline: answer the caller then; the queued
    // task finds its deadline passed when it starts and sends nothing.
    task.catch(() => {});
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(late()), Math.max(0, deadline - Date.now()) + 5);
    });
    try {
      return await Promise.race([task, expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  async put(key: string, body: Buffer, opts: RequestOptions = {}): Promise<void> {
    if (body.length >= this.multipartThreshold && body.length > this.partSize) return this.putInParts(key, body);
    await this.run(
      'put',
      key,
      (abortSignal) =>
        this.client.send(unsignedPayload(new PutObjectCommand({ Bucket: this.opts.bucket, Key: this.key(key), Body: body, ContentLength: body.length })), { abortSignal }),
      opts.deadlineMs,
    );
    this.counts.bytesPut += body.length;
    this.counts.puts++;
    this.bytesTotal.inc({ op: 'put' }, body.length);
  }

  /**
   * A multipart upload: parts go up in parallel through the request queue, each retried on
   * its own; a failure aborts the upload so no parts are left billed in the bucket.
   */
  private async putInParts(key: string, body: Buffer): Promise<void> {
    const Bucket = this.opts.bucket;
    const Key = this.key(key);
    const created = await this.run('multipart', `${key} (create)`, (abortSignal) =>
      this.client.send(new CreateMultipartUploadCommand({ Bucket, Key }), { abortSignal }),
    );
    const UploadId = created.UploadId;
    if (!UploadId) throw new TierfsError(StatusCode.UNAVAILABLE, `S3 multipart upload of ${key}: the server returned no upload id`);
    try {
      const count = Math.ceil(body.length / this.partSize);
      const parts = await Promise.all(
        Array.from({ length: count }, async (_, i) => {
          const part = body.subarray(i * this.partSize, Math.min(body.length, (i + 1) * this.partSize));
          const PartNumber = i + 1;
          const res = await this.run('put_part', `${key} part ${PartNumber}/${count}`, (abortSignal) =>
            this.client.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body: part, ContentLength: part.length }), { abortSignal }),
          );
          if (!res.ETag) throw new TierfsError(StatusCode.UNAVAILABLE, `S3 multipart upload of ${key}: part ${PartNumber} has no ETag`);
          return { ETag: res.ETag, PartNumber };
        }),
      );
      try {
        await this.run('multipart', `${key} (complete)`, (abortSignal) =>
          this.client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: parts } }), { abortSignal }),
        );
      } catch (err) {
        // A retried Complete whose first attempt succeeded finds the upload gone: the object
        // of the right size is the proof it did.
        if (!(err instanceof TierfsError && err.code === StatusCode.NOT_FOUND) || (await this.head(key))?.size !== body.length) throw err;
      }
    } catch (err) {
      await this.run('multipart', `${key} (abort)`, (abortSignal) =>
        this.client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }), { abortSignal }),
      ).catch((abortErr: unknown) => this.log.warn({ key, err: String(abortErr) }, 'S3 multipart abort failed; the bucket may keep orphan parts'));
      throw err;
    }
    this.counts.bytesPut += body.length;
    this.counts.puts++;
    this.bytesTotal.inc({ op: 'put' }, body.length);
  }

  async get(key: string, offset?: number, length?: number, opts: RequestOptions = {}): Promise<Buffer> {
    if (length === 0) return Buffer.alloc(0);
    const range = offset !== undefined ? `bytes=${offset}-${length !== undefined ? offset + length - 1 : ''}` : undefined;
    const data = await this.run(
      'get',
      key,
      async (abortSignal) => {
        const res = await this.client.send(new GetObjectCommand({ Bucket: this.opts.bucket, Key: this.key(key), Range: range }), { abortSignal });
        return readBody(res.Body as Readable, res.ContentLength);
      },
      opts.deadlineMs,
    );
    this.counts.bytesGot += data.length;
    this.counts.gets++;
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
    const objects = (res.Contents ?? []).map((o) => ({
      key: (o.Key ?? '').slice(this.prefix.length),
      size: o.Size ?? 0,
      ...(o.LastModified ? { lastModifiedMs: o.LastModified.getTime() } : {}),
    }));
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
