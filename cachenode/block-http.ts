// The cache node's block data plane: `GET /blocks/KEY?size=N` over HTTP/1.1 keep-alive (HTTPS
// with the cluster's mutual TLS when it has one), answering the block's bytes with its CRC-32
// in `x-tierfs-crc32`, or 404. Blocks are the bulk of what a node moves, and gRPC is costly
// for them: HTTP/2 framing plus protobuf copies cost the mount 3-5 ms of CPU per MiB, and a
// GetBlock stream of 4 MiB blocks moved 25-28 MiB/s on the loaded 2-core test machine where
// plain HTTP moved 114-144 MiB/s (2026-12-06). Control calls (put, has, evict, stats) stay
// on gRPC. Callers must hold the cluster key (header x-tierfs-cluster-key), as on gRPC.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { CLUSTER_KEY_HEADER, keyMatches, type ClusterAuth } from '../common/cluster-auth.js';
import type { Logger } from '../common/log.js';
import type { NodeBlockStore } from './block-store.js';

/** Object keys are file names here: nothing that could leave the directory. */
export const BLOCK_KEY = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$/;

export const CRC_HEADER = 'x-tierfs-crc32';

export interface BlockHttpServer {
  /** host:port it listens on. */
  readonly address: string;
  close(): Promise<void>;
}

export async function startBlockHttpServer(store: NodeBlockStore, host: string, port: number, auth: ClusterAuth, log: Logger): Promise<BlockHttpServer> {
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    void serve(store, auth, req, res).catch((err: unknown) => {
      log.warn({ err: String(err), url: req.url }, 'cache node: block request failed');
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  };
  const server: Server = auth.tls
    ? createHttpsServer({ cert: auth.tls.cert, key: auth.tls.key, ca: auth.tls.ca, requestCert: true, rejectUnauthorized: true }, handle)
    : createHttpServer(handle);
  // Mounts keep their connections: idle ones may stay a while (the client's agent closes first).
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  return {
    address: `${host.includes(':') ? `[${host}]` : host}:${a.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function serve(store: NodeBlockStore, auth: ClusterAuth, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (auth.key && !keyMatches(auth.key, req.headers[CLUSTER_KEY_HEADER] as string | undefined)) {
    res.writeHead(401).end('cluster key required');
    return;
  }
  const url = new URL(req.url ?? '/', 'http://node');
  const m = /^\/blocks\/([^/]+)$/.exec(url.pathname);
  const size = Number(url.searchParams.get('size'));
  if (req.method !== 'GET' || !m || !BLOCK_KEY.test(m[1]!) || !Number.isSafeInteger(size) || size < 0) {
    res.writeHead(400).end('expected GET /blocks/KEY?size=N');
    return;
  }
  const b = await store.get(m[1]!, size);
  if (!b) {
    res.writeHead(404, { 'content-length': 0 }).end();
    return;
  }
  res.writeHead(200, { 'content-length': b.data.length, 'content-type': 'application/octet-stream', [CRC_HEADER]: String(b.crc32 >>> 0) });
  res.end(b.data);
}
