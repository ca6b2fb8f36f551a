// Who may call a tierfs daemon: the holders of the cluster key. Every gRPC server checks
// the key on every call (server interceptor) and every client sends it (client
// interceptor in CHANNEL_OPTIONS); TLS between hosts is optional on top. A process has one
// cluster identity: daemons and the CLI call `useClusterAuth` once at start, and
// `startGrpcServer`, `CHANNEL_OPTIONS` and `clientCredentials()` read it from there, so no
// service or client has to thread it through its constructors.
import * as grpc from '@grpc/grpc-js';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { z } from './config.js';
import type { Logger } from './log.js';
import { StatusCode, TierfsError } from './status.js';

/** The metadata entry carrying the key (gRPC lowercases keys anyway). */
export const CLUSTER_KEY_HEADER = 'x-tierfs-cluster-key';

export interface TlsFiles {
  cert: string;
  key: string;
  ca: string;
}

export interface ClusterAuth {
  /** The cluster key; null = calls are not checked (a daemon started without `clusterKeyFile`). */
  key: Buffer | null;
  /** PEM material for mutual TLS; null = plaintext (loopback, or a trusted network). */
  tls: { cert: Buffer; key: Buffer; ca: Buffer } | null;
}

export const OPEN_AUTH: ClusterAuth = { key: null, tls: null };

/** The keys every daemon config gains (mds, metaserver, and any later daemon). */
export const clusterAuthConfig = {
  /** File holding the cluster key (mode 0600). Required unless allowUnauthenticated. */
  clusterKeyFile: z.string().min(1).optional(),
  /**
   * Run without a cluster key: every caller that reaches the port is served. Only for a
   * trusted single host or tests; also TIERFS_ALLOW_UNAUTHENTICATED=1 in the environment.
   */
  allowUnauthenticated: z.boolean().default(false),
  /** Mutual TLS between hosts: this process's certificate and key, and the CA that signed every peer's. */
  tls: z.object({ cert: z.string().min(1), key: z.string().min(1), ca: z.string().min(1) }).optional(),
};

let current: ClusterAuth = OPEN_AUTH;
let rejectionLog: Logger | null = null;

/** Sets this process's cluster identity: what its servers demand and its clients send. */
export function useClusterAuth(auth: ClusterAuth, log: Logger | null = null): void {
  current = auth;
  rejectionLog = log;
}

export function clusterAuth(): ClusterAuth {
  return current;
}

/**
 * Reads a file holding a secret. Refused when group or others may read it, as ssh refuses
 * a private key: a secret that every local user can read protects nothing.
 */
export function readSecretFile(file: string, what: string): Buffer {
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch (err) {
    throw new TierfsError(StatusCode.INVALID_ARGUMENT, `${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  if ((mode & 0o077) !== 0) {
    throw new TierfsError(StatusCode.PERMISSION_DENIED, `${what} ${file} is open to other users (mode ${(mode & 0o777).toString(8)}); chmod 600 ${file}`);
  }
  return readFileSync(file);
}

/** The key as sent on the wire: the file's text without surrounding whitespace. */
function keyText(raw: Buffer): Buffer {
  const text = raw.toString('utf8').trim();
  if (text.length < 16) throw new TierfsError(StatusCode.INVALID_ARGUMENT, 'cluster key too short (at least 16 characters)');
  if (!/^[\x21-\x7e]+$/.test(text)) throw new TierfsError(StatusCode.INVALID_ARGUMENT, 'cluster key must be printable ASCII without spaces (it travels as gRPC metadata)');
  return Buffer.from(text, 'utf8');
}

export function loadClusterAuth(cfg: { clusterKeyFile?: string | undefined; tls?: TlsFiles | undefined }): ClusterAuth {
  const key = cfg.clusterKeyFile ? keyText(readSecretFile(cfg.clusterKeyFile, 'cluster key file')) : null;
  const tls = cfg.tls
    ? { cert: readFileSync(cfg.tls.cert), key: readSecretFile(cfg.tls.key, 'TLS key file'), ca: readFileSync(cfg.tls.ca) }
    : null;
  return { key, tls };
}

/** Writes a new random key (256 bits, hex) to `file`, created 0600; fails if the file exists. */
export function createClusterKey(file: string): void {
  const fd = openSync(file, 'wx', 0o600);
  try {
    writeSync(fd, `${randomBytes(32).toString('hex')}\n`);
  } finally {
    closeSync(fd);
  }
}

/** Constant-time comparison: hashing first makes the lengths equal, so even the length does not leak. */
export function keyMatches(expected: Buffer, given: string | Buffer | undefined): boolean {
  if (given === undefined) return false;
  const a = createHash('sha256').update(expected).digest();
  const b = createHash('sha256').update(given).digest();
  return timingSafeEqual(a, b);
}

/** Remembers which peers were already logged, so a misconfigured client cannot flood the log. */
class RejectionLog {
  private readonly seen = new Set<string>();
  constructor(private readonly limit = 1024) {}

  note(peer: string, method: string, reason: string, log: Logger | null): void {
    const host = peer.slice(0, peer.lastIndexOf(':')) || peer;
    if (this.seen.has(host) || this.seen.size >= this.limit) return;
    this.seen.add(host);
    log?.warn({ peer: host, method, reason }, 'refused a call without the cluster key (logged once per peer)');
  }
}

/** The server half: answers UNAUTHENTICATED before the handler sees anything. */
export function serverAuthInterceptor(key: Buffer, log: () => Logger | null = () => rejectionLog): grpc.ServerInterceptor {
  const rejections = new RejectionLog();
  return (method, call) => {
    const listener = new grpc.ServerListenerBuilder()
      .withOnReceiveMetadata((metadata, next) => {
        const given = metadata.get(CLUSTER_KEY_HEADER)[0];
        if (keyMatches(key, given)) {
          metadata.remove(CLUSTER_KEY_HEADER); // handlers never see it, so nothing logs it
          next(metadata);
          return;
        }
        rejections.note(call.getPeer(), method.path, given === undefined ? 'no key' : 'wrong key', log());
        call.sendStatus({ code: grpc.status.UNAUTHENTICATED, details: 'cluster key missing or wrong', metadata: new grpc.Metadata() });
      })
      .build();
    const responder = new grpc.ResponderBuilder().withStart((next) => next(listener)).build();
    return new grpc.ServerInterceptingCall(call, responder);
  };
}

/** The client half: adds this process's key (if any) to every call's metadata. */
export const clientKeyInterceptor: grpc.Interceptor = (options, nextCall) =>
  new grpc.InterceptingCall(nextCall(options), {
    start(metadata, listener, next) {
      if (current.key) metadata.set(CLUSTER_KEY_HEADER, current.key.toString('utf8'));
      next(metadata, listener);
    },
  });

export function serverCredentials(auth: ClusterAuth = current): grpc.ServerCredentials {
  if (!auth.tls) return grpc.ServerCredentials.createInsecure();
  // Mutual TLS: a peer must present a certificate signed by the cluster's CA.
  return grpc.ServerCredentials.createSsl(auth.tls.ca, [{ private_key: auth.tls.key, cert_chain: auth.tls.cert }], true);
}

/** Channel credentials for a client of any tierfs daemon (TLS when this process has it). */
export function clientCredentials(auth: ClusterAuth = current): grpc.ChannelCredentials {
  if (!auth.tls) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(auth.tls.ca, auth.tls.key, auth.tls.cert);
}

/** A daemon's start: adopt the configured key and TLS, and say so when calls go unchecked. */
export function adoptDaemonClusterAuth(
  cfg: { clusterKeyFile?: string | undefined; tls?: TlsFiles | undefined; allowUnauthenticated?: boolean },
  log: Logger,
  env: NodeJS.ProcessEnv = process.env,
): ClusterAuth {
  const auth = loadClusterAuth(cfg);
  if (!auth.key) {
    // A daemon that answers anyone must be asked for, not fallen into by a missing line.
    if (!cfg.allowUnauthenticated && env.TIERFS_ALLOW_UNAUTHENTICATED !== '1') {
      throw new TierfsError(
        StatusCode.INVALID_ARGUMENT,
        'no clusterKeyFile configured: every call would be served unauthenticated. Name the cluster key file (clusterKeyFile; tierfs up makes one), or set allowUnauthenticated: true on a trusted single host',
      );
    }
    log.warn('allowUnauthenticated: this daemon answers anyone who can reach its port');
  }
  useClusterAuth(auth, log);
  return auth;
}
