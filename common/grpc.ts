// gRPC plumbing shared by every daemon and client: proto loading, servers on
// loopback, promise-based unary calls with deadlines, and leader following.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { StatusCode, TierfsError } from './status.js';
import { clientKeyInterceptor, clusterAuth, serverAuthInterceptor, serverCredentials, type ClusterAuth } from './cluster-auth.js';

export { clientCredentials } from './cluster-auth.js';

/** Must match the flags in scripts/gen-proto.mjs so generated types describe runtime objects. */
export const PROTO_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

function protoDir(): string {
  // dist/common/grpc.js -> <root>/proto ; common/grpc.ts (tsx) -> <root>/proto
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, 'proto', 'common.proto'))) return join(dir, 'proto');
    dir = dirname(dir);
  }
  throw new Error('proto/ directory not found');
}

const cache = new Map<string, grpc.GrpcObject>();

/** Loads one proto file; cast the result to the generated `ProtoGrpcType` of that file. */
export function loadProto<T>(file: string): T {
  let pkg = cache.get(file);
  if (!pkg) {
    const dir = protoDir();
    const def = protoLoader.loadSync(join(dir, file), { ...PROTO_OPTIONS, includeDirs: [dir] });
    pkg = grpc.loadPackageDefinition(def);
    cache.set(file, pkg);
  }
  return pkg as unknown as T;
}

/** Channel options: large messages (snapshots, slices) and quick reconnects on loopback. */
const CHANNEL_SETTINGS: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
  'grpc.max_send_message_length': 64 * 1024 * 1024,
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1000,
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
};

/**
 * Options of every tierfs client: the channel settings plus the interceptor that sends
 * this process's cluster key (common/cluster-auth.ts). Pair with `clientCredentials()`.
 */
export const CHANNEL_OPTIONS: grpc.ClientOptions = { ...CHANNEL_SETTINGS, interceptors: [clientKeyInterceptor] };

export interface RunningServer {
  readonly server: grpc.Server;
  readonly port: number;
  readonly address: string;
  close(): Promise<void>;
}

/**
 * Serves `services` on `address`. Every call must carry the cluster key of `auth` (default:
 * this process's, see `useClusterAuth`), else it is answered UNAUTHENTICATED; with TLS
 * material the port speaks mutual TLS.
 */
export async function startGrpcServer(
  address: string,
  services: Array<[grpc.ServiceDefinition, grpc.UntypedServiceImplementation]>,
  auth: ClusterAuth = clusterAuth(),
): Promise<RunningServer> {
  const server = new grpc.Server({ ...CHANNEL_SETTINGS, interceptors: auth.key ? [serverAuthInterceptor(auth.key)] : [] });
  for (const [def, impl] of services) server.addService(def, impl);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, serverCredentials(auth), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const host = address.slice(0, address.lastIndexOf(':'));
  return {
    server,
    port,
    address: `${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}

type UnaryMethod<Req, Res> = (
  req: Req,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res?: Res) => void,
) => grpc.ClientUnaryCall;

/** Calls a unary method with a deadline; transport failures become UNAVAILABLE/TIMEOUT TierfsErrors. */
export function unary<Req, Res>(client: grpc.Client, method: string, req: Req, timeoutMs = 5000): Promise<Res> {
  const fn = (client as unknown as Record<string, UnaryMethod<Req, Res>>)[method];
  if (typeof fn !== 'function') throw new TierfsError(StatusCode.INTERNAL, `no rpc method ${method}`);
  return new Promise<Res>((resolve, reject) => {
    fn.call(client, req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
      if (err) reject(grpcErrorToTierfs(err, method));
      else resolve(res as Res);
    });
  });
}

export function grpcErrorToTierfs(err: grpc.ServiceError, what: string): TierfsError {
  if (err.code === grpc.status.DEADLINE_EXCEEDED) return new TierfsError(StatusCode.TIMEOUT, `${what}: deadline exceeded`);
  if (err.code === grpc.status.UNAVAILABLE) return new TierfsError(StatusCode.UNAVAILABLE, `${what}: ${err.details || 'unavailable'}`);
  if (err.code === grpc.status.UNIMPLEMENTED) return new TierfsError(StatusCode.NOT_SUPPORTED, `${what}: not implemented`);
  if (err.code === grpc.status.UNAUTHENTICATED) return new TierfsError(StatusCode.PERMISSION_DENIED, `${what}: refused: ${err.details || 'cluster key missing or wrong'} (check clusterKeyFile / --cluster-key-file)`);
  return new TierfsError(StatusCode.INTERNAL, `${what}: ${err.details || err.message}`);
}

/** Wraps an async handler as a grpc-js unary handler; thrown errors become a gRPC INTERNAL error. */
export function handler<Req, Res>(fn: (req: Req) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    fn(call.request).then(
      (res) => callback(null, res),
      (err: unknown) => callback({ code: grpc.status.INTERNAL, details: err instanceof Error ? err.message : String(err) }),
    );
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Follows the leader among a list of peers. `call` returns a response carrying a Status;
 * NOT_LEADER moves to the hinted leader, transport errors move to the next address.
 * Gives up after `deadlineMs`, surfacing the last error.
 */
export class LeaderFollower<C> {
  private leader = 0;
  private readonly clients = new Map<string, C>();

  constructor(
    private addresses: string[],
    private readonly makeClient: (address: string) => C,
    private readonly deadlineMs = 15_000,
  ) {
    if (addresses.length === 0) throw new TierfsError(StatusCode.INVALID_ARGUMENT, 'no addresses given');
  }

  get current(): string {
    return this.addresses[this.leader % this.addresses.length]!;
  }

  client(address: string): C {
    let c = this.clients.get(address);
    if (!c) {
      c = this.makeClient(address);
      this.clients.set(address, c);
    }
    return c;
  }

  async call<R extends { status?: { code: string; message: string; leader_hint: string } | null }>(
    fn: (client: C) => Promise<R>,
  ): Promise<R> {
    const until = Date.now() + this.deadlineMs;
    let lastErr: unknown = null;
    let attempt = 0;
    while (Date.now() < until) {
      const address = this.current;
      try {
        const res = await fn(this.client(address));
        const status = res.status;
        if (status && status.code === StatusCode.NOT_LEADER) {
          lastErr = new TierfsError(StatusCode.NOT_LEADER, status.message, status.leader_hint);
          this.moveTo(status.leader_hint);
        } else {
          return res;
        }
      } catch (err) {
        if (!(err instanceof TierfsError) || (err.code !== StatusCode.UNAVAILABLE && err.code !== StatusCode.TIMEOUT)) throw err;
        lastErr = err;
        this.leader++;
      }
      attempt++;
      await sleep(Math.min(50 * attempt, 500));
    }
    throw lastErr instanceof Error ? lastErr : new TierfsError(StatusCode.UNAVAILABLE, 'no leader reachable');
  }

  private moveTo(hint: string): void {
    if (!hint) {
      this.leader++;
      return;
    }
    let i = this.addresses.indexOf(hint);
    if (i < 0) {
      this.addresses = [...this.addresses, hint];
      i = this.addresses.length - 1;
    }
    this.leader = i;
  }

  close(): void {
    for (const c of this.clients.values()) (c as unknown as grpc.Client).close?.();
    this.clients.clear();
  }
}

/**
 * One client per server address, made on first use and kept: gRPC channels multiplex every
 * call, so a caller that talks to many servers (copyset leaders, chunkservers) wants exactly
 * one channel each, closed together when it is done.
 */
export class ClientsByAddress<C extends grpc.Client> {
  private readonly clients = new Map<string, C>();

  constructor(private readonly make: (address: string) => C) {}

  get(address: string): C {
    let c = this.clients.get(address);
    if (!c) {
      c = this.make(address);
      this.clients.set(address, c);
    }
    return c;
  }

  closeAll(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
