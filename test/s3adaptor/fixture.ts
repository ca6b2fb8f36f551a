// Shared setup for data-path tests: an ObjectStore on a real s3rver started by test/support.
import { createObjectStore, type ObjectStore } from '../../s3adaptor/object-store.js';
import { MemoryObjectStore } from '../../s3adaptor/memory-object-store.js';
import { after, before } from 'node:test';
import { startS3, type TestS3 } from '../support/s3.js';

export function storeFor(s3: TestS3, extra: { keyPrefix?: string; maxAttempts?: number; timeoutMs?: number } = {}): ObjectStore {
  return createObjectStore({
    endpoint: s3.endpoint,
    bucket: s3.bucket,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    maxAttempts: extra.maxAttempts ?? 3,
    timeoutMs: extra.timeoutMs ?? 20_000,
    retryBaseMs: 20,
    keyPrefix: extra.keyPrefix,
  });
}

/** Polls until cond() is true, failing after timeoutMs with the description. */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A test file's own s3rver and store under keyPrefix: started before its tests, closed after. */
export function useS3Store(keyPrefix: string, onReady: (store: ObjectStore) => void): void {
  let s3: TestS3 | undefined;
  let store: ObjectStore | undefined;
  before(async () => {
    s3 = await startS3();
    store = storeFor(s3, { keyPrefix });
    onReady(store);
  });
  after(async () => {
    store?.close();
    await s3?.close();
  });
}

/**
 * An in-memory store for a test file whose tests are about the data path, not S3 (the S3
 * contract itself is covered by object-store.test and the tests that stop a real server).
 */
export function useMemoryStore(onReady: (store: MemoryObjectStore) => void): void {
  before(() => onReady(new MemoryObjectStore()));
}
