// The mount's side of a cache node's block data plane (cachenode/block-http.ts): GET
// /blocks/KEY?size=N over kept-alive HTTP/1.1 connections (HTTPS with the cluster's mutual
// TLS when it has one), the body streamed straight into one buffer of the block's size: one
// copy, no HTTP/2 framing or protobuf in between.
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { CLUSTER_KEY_HEADER, clusterAuth, type ClusterAuth } from '../common/cluster-auth.js';

export const CRC_HEADER = 'x-tierfs-crc32';

export interface FetchedBlock {
  found: boolean;
  data: Buffer;
  crc32: number;
}

export class BlockHttpClient {
  private readonly agent: HttpAgent;
  private readonly tls: boolean;
  private readonly host: string;
  private readonly port: number;

  constructor(
    readonly address: string,
    private readonly auth: ClusterAuth = clusterAuth(),
    maxSockets = 16,
  ) {
    const i = address.lastIndexOf(':');
    this.host = address.slice(0, i).replace(/^\[|\]$/g, '');
    this.port = Number(address.slice(i + 1));
    this.tls = auth.tls !== null;
    const opts = { keepAlive: true, maxSockets };
    this.agent = this.tls ? new HttpsAgent({ ...opts, cert: auth.tls!.cert, key: auth.tls!.key, ca: auth.tls!.ca }) : new HttpAgent(opts);
  }

  /**
   * The block of `size` bytes, or found: false; throws on transport errors, and when the node
   * is silent for `timeoutMs` — before its answer starts or between pieces of the body. A
   * node that keeps sending is not cut off however long the block takes (a busy node is
   * still faster than starting over from S3); a dead or stuck one costs one timeout.
   */
  get(key: string, size: number, timeoutMs: number): Promise<FetchedBlock> {
    const headers: Record<string, string> = {};
    if (this.auth.key) headers[CLUSTER_KEY_HEADER] = this.auth.key.toString();
    const request = this.tls ? httpsRequest : httpRequest;
    const ctl = new AbortController();
    let timer = setTimeout(() => ctl.abort(), timeoutMs);
    const alive = () => {
      clearTimeout(timer);
      timer = setTimeout(() => ctl.abort(), timeoutMs);
    };
    return new Promise<FetchedBlock>((resolve, reject) => {
      const req = request(
        { host: this.host, port: this.port, path: `/blocks/${encodeURIComponent(key)}?size=${size}`, agent: this.agent, headers, signal: ctl.signal },
        (res) => readBlock(res, size, alive).then(resolve, reject),
      );
      req.on('error', reject);
      req.end();
    }).finally(() => clearTimeout(timer));
  }

  close(): void {
    this.agent.destroy();
  }
}

async function readBlock(res: IncomingMessage, size: number, alive: () => void): Promise<FetchedBlock> {
  alive();
  if (res.statusCode === 404) {
    res.resume();
    return { found: false, data: Buffer.alloc(0), crc32: 0 };
  }
  if (res.statusCode !== 200) {
    res.resume();
    throw new Error(`cache node answered HTTP ${res.statusCode}`);
  }
  const length = Number(res.headers['content-length']);
  const crc32 = Number(res.headers[CRC_HEADER]);
  if (length !== size) {
    // The node holds a block of another length: damaged. Not read into memory; the caller
    // counts it and drops it at the node.
    res.destroy();
    return { found: true, data: Buffer.alloc(0), crc32 };
  }
  const data = Buffer.allocUnsafe(size);
  let at = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    if (at + chunk.length > size) throw new Error(`cache node sent more than the ${size} bytes it announced`);
    chunk.copy(data, at);
    at += chunk.length;
    alive();
  }
  if (at !== size) throw new Error(`cache node's body ended at ${at} of ${size} bytes`);
  return { found: true, data, crc32 };
}
