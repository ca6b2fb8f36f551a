// Calls MetaServerService methods on the leader of a copyset: follows NOT_LEADER hints,
// moves to the next peer on transport errors, refreshes the copyset's location from the
// MDS when every peer failed, and retries writes with the same request id, so a retry
// after a leader change is answered from the recorded result instead of applying twice.
// Calls to one server made in the same turn travel as one Batch RPC (rpc-batcher.ts).
import * as grpc from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { CHANNEL_OPTIONS, ClientsByAddress, clientCredentials, loadProto, sleep } from '../common/grpc.js';
import { RpcBatcher } from './rpc-batcher.js';
import type { Logger } from '../common/log.js';
import { silentLogger } from '../common/log.js';
import { check, StatusCode, TierfsError } from '../common/status.js';
import type { ProtoGrpcType } from '../proto/gen/metaserver.js';
import type { RequestId } from '../proto/gen/tierfs/metaserver/RequestId.js';

export interface CopysetLocator {
  getCopysetLocation(poolId: number, copysetId: number): Promise<{ peers: string[]; leader: string }>;
}

interface Location {
  peers: string[];
  leader: string;
  next: number;
}

/** How long a server that did not answer is tried only when no other peer is left. */
const SUSPECT_MS = 5000;

/** Statuses worth retrying on another peer or later: leadership moving, a peer down. */
const REDIRECT = new Set<string>([StatusCode.NOT_LEADER, StatusCode.UNAVAILABLE, StatusCode.TIMEOUT]);

export interface MetaRpcOptions {
  locator: CopysetLocator;
  logger?: Logger;
  /** How long one call keeps trying before it gives up with the last error. */
  deadlineMs?: number;
  rpcTimeoutMs?: number;
}

export class MetaRpc {
  readonly clientId = randomUUID();
  /** Calls repeated on another peer or later (leader changes, peers down), for tests and metrics. */
  retries = 0;
  private seq = 0;
  private readonly inFlight = new Set<number>();
  private readonly clients = new ClientsByAddress<grpc.Client>((address) => {
    const Ctor = loadProto<ProtoGrpcType>('metaserver.proto').tierfs.metaserver.MetaServerService;
    return new Ctor(address, clientCredentials(), CHANNEL_OPTIONS);
  });
  private readonly locations = new Map<string, Location>();
  /**
   * Servers whose last call failed in transport (down, cut off, timed out) -> until when to
   * avoid them. Without this a call to a partitioned leader times out, and the next attempt
   * (the next peer in line, or a follower's hint naming the old leader before the election
   * ends) goes back to it: two RPC timeouts spend the whole --meta-timeout.
   */
  private readonly suspects = new Map<string, number>();
  private readonly logger: Logger;
  private readonly deadlineMs: number;
  private readonly rpcTimeoutMs: number;
  readonly batcher: RpcBatcher;

  constructor(private readonly opts: MetaRpcOptions) {
    this.logger = opts.logger ?? silentLogger;
    this.deadlineMs = opts.deadlineMs ?? 30_000;
    this.rpcTimeoutMs = opts.rpcTimeoutMs ?? 5_000;
    const service = loadProto<ProtoGrpcType>('metaserver.proto').tierfs.metaserver.MetaServerService.service;
    this.batcher = new RpcBatcher((address) => this.client(address), service);
  }

  /** Seeds or updates what we know about a copyset's members and leader. */
  setLocation(poolId: number, copysetId: number, peers: string[], leader: string): void {
    const key = `${poolId}.${copysetId}`;
    const known = this.locations.get(key);
    this.locations.set(key, { peers: [...peers], leader: leader || known?.leader || '', next: 0 });
  }

  private client(address: string): grpc.Client {
    return this.clients.get(address);
  }

  private async location(poolId: number, copysetId: number, refresh: boolean): Promise<Location> {
    const key = `${poolId}.${copysetId}`;
    let loc = this.locations.get(key);
    if (!loc || refresh || loc.peers.length === 0) {
      const fresh = await this.opts.locator.getCopysetLocation(poolId, copysetId);
      loc = { peers: fresh.peers, leader: fresh.leader, next: 0 };
      this.locations.set(key, loc);
    }
    return loc;
  }

  /** A new request id for one logical write; pass it to every retry of that write. */
  newRequestId(): RequestId & { seq: number } {
    const seq = ++this.seq;
    this.inFlight.add(seq);
    let low = seq;
    for (const s of this.inFlight) if (s < low) low = s;
    return { client_id: this.clientId, seq, low_seq: low };
  }

  private done(rid: { seq?: number | string } | undefined): void {
    if (rid && typeof rid.seq === 'number') this.inFlight.delete(rid.seq);
  }

  /**
   * Calls `method` on the copyset's leader. Returns the response once its status is final
   * (OK or an error other than a redirect); throws TierfsError for non-OK when `throwOnError`.
   */
  async call<Res extends { status: { code: string; message: string; leader_hint: string } | null }>(
    poolId: number,
    copysetId: number,
    method: string,
    req: { rid?: RequestId; [field: string]: unknown },
    throwOnError = true,
  ): Promise<Res> {
    const until = Date.now() + this.deadlineMs;
    let lastErr: TierfsError = new TierfsError(StatusCode.UNAVAILABLE, `${method}: no metaserver of copyset ${poolId}.${copysetId} answered`);
    let attempt = 0;
    let refresh = false;
    try {
      while (Date.now() < until) {
        let loc: Location;
        try {
          loc = await this.location(poolId, copysetId, refresh);
        } catch (err) {
          lastErr = err instanceof TierfsError ? err : new TierfsError(StatusCode.UNAVAILABLE, String(err));
          await sleep(Math.min(100 * ++attempt, 1000));
          continue;
        }
        refresh = false;
        if (loc.leader && this.suspect(loc.leader)) loc.leader = '';
        const address = loc.leader || this.nextPeer(loc);
        if (!address) {
          refresh = true;
          await sleep(Math.min(100 * ++attempt, 1000));
          continue;
        }
        let res: Res | null = null;
        try {
          // Never wait on one server past the call's own deadline: that is the caller's bound.
          const rpcTimeoutMs = Math.max(200, Math.min(this.rpcTimeoutMs, until - Date.now()));
          res = await this.batcher.call<Res>(address, method, req, rpcTimeoutMs);
        } catch (err) {
          lastErr = err instanceof TierfsError ? err : new TierfsError(StatusCode.UNAVAILABLE, String(err));
          if (!REDIRECT.has(lastErr.code)) throw lastErr;
          this.suspects.set(address, Date.now() + SUSPECT_MS);
        }
        if (res) this.suspects.delete(address);
        const status = res?.status;
        const copysetMissing = status?.code === StatusCode.NOT_FOUND && status.message.includes('is not on this metaserver');
        if (res && status && !REDIRECT.has(status.code) && !copysetMissing) {
          if (throwOnError) check(status, method);
          return res;
        }
        if (status) lastErr = new TierfsError(status.code as StatusCode, `${method}: ${status.message}`, status.leader_hint);
        // Move on: to the hinted leader, else to the next peer; after a full round ask the MDS.
        const hint = status?.code === StatusCode.NOT_LEADER ? status.leader_hint : '';
        if (hint && hint !== address && !this.suspect(hint)) {
          loc.leader = hint;
          if (!loc.peers.includes(hint)) loc.peers.push(hint);
        } else {
          loc.leader = '';
          loc.next++;
          if (loc.next % Math.max(1, loc.peers.length) === 0) refresh = true;
        }
        attempt++;
        this.retries++;
        this.logger.debug({ method, address, code: lastErr.code, attempt }, 'retrying on another metaserver');
        await sleep(Math.min(30 * attempt, 500, Math.max(0, until - Date.now())));
      }
      // Out of time with no metaserver answering: EIO for the caller (UNAVAILABLE), also when
      // the last attempt was an RPC timeout, which would otherwise surface as ETIMEDOUT.
      if (lastErr.code === StatusCode.TIMEOUT || lastErr.code === StatusCode.NOT_LEADER) {
        throw new TierfsError(StatusCode.UNAVAILABLE, `${method}: no leader of copyset ${poolId}.${copysetId} answered within ${this.deadlineMs} ms (${lastErr.message})`);
      }
      throw lastErr;
    } finally {
      this.done(req.rid as { seq?: number } | undefined);
    }
  }

  private suspect(address: string): boolean {
    const until = this.suspects.get(address);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.suspects.delete(address);
    return false;
  }

  /** The next peer in line that is not suspect (or simply the next one, when all are). */
  private nextPeer(loc: Location): string | undefined {
    const n = Math.max(1, loc.peers.length);
    for (let i = 0; i < loc.peers.length; i++) {
      const candidate = loc.peers[(loc.next + i) % n]!;
      if (!this.suspect(candidate)) {
        loc.next += i;
        return candidate;
      }
    }
    return loc.peers[loc.next % n];
  }

  close(): void {
    this.clients.closeAll();
  }
}
