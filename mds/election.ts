// Who leads the MDS cluster. With etcd every MDS campaigns (etcd3 Election, the campaign
// value is its address, so standbys can hint the leader); with the embedded store there
// is one MDS and it always leads. A leader that cannot renew its session in time steps
// down at once, before etcd hands leadership to someone else.
import { EventEmitter } from 'node:events';
import type { Etcd3, Campaign, Lease } from 'etcd3';
import type { Logger } from '../common/log.js';

export interface MdsMemberInfo {
  address: string;
  pid: number;
  leader: boolean;
}

export interface Leadership extends EventEmitter {
  /**
   * Emits 'elected' (with the fence key writes of this term must be conditioned on, or
   * null without etcd) when this MDS becomes leader, and 'deposed' when it stops.
   */
  start(): Promise<void>;
  isLeader(): boolean;
  /** The current leader's address ("" when unknown). */
  leaderAddress(): string;
  members(): Promise<MdsMemberInfo[]>;
  close(): Promise<void>;
}

export class SoleLeadership extends EventEmitter implements Leadership {
  private leading = false;
  constructor(private readonly address: string) {
    super();
  }
  async start(): Promise<void> {
    this.leading = true;
    this.emit('elected', null);
  }
  isLeader(): boolean {
    return this.leading;
  }
  leaderAddress(): string {
    return this.address;
  }
  async members(): Promise<MdsMemberInfo[]> {
    return [{ address: this.address, pid: process.pid, leader: this.leading }];
  }
  async close(): Promise<void> {
    if (this.leading) {
      this.leading = false;
      this.emit('deposed');
    }
  }
}

export class EtcdLeadership extends EventEmitter implements Leadership {
  private campaign: Campaign | null = null;
  private hintTimer: NodeJS.Timeout | null = null;
  private memberLease: Lease | null = null;
  private leading = false;
  private hint = '';
  private closed = false;
  private lastKeepaliveOk = 0;
  private watchdogArmed = false;
  private watchdog: NodeJS.Timeout | null = null;
  private retry: NodeJS.Timeout | null = null;

  constructor(
    private readonly client: Etcd3,
    private readonly prefix: string,
    private readonly address: string,
    private readonly ttlS: number,
    private readonly log: Logger,
  ) {
    super();
  }

  private get election() {
    return this.client.namespace(this.prefix).election('mds-leader', this.ttlS);
  }

  async start(): Promise<void> {
    // etcd3's ElectionObserver can latch onto a non-leader candidate when several campaign at
    // once (it takes the last put it sees), so the hint is polled: the oldest key leads.
    await this.refreshHint();
    this.hintTimer = setInterval(() => void this.refreshHint(), 300);
    await this.registerMember();
    this.runCampaign();
    // The session is valid until its last renewal + TTL; stop leading well before that.
    this.watchdog = setInterval(() => {
      if (this.leading && !this.sessionFresh()) {
        this.log.error({ sinceMs: Date.now() - this.lastKeepaliveOk }, 'election session not renewed in time: stepping down');
        this.restartCampaign();
      }
    }, 200);
  }

  private async registerMember(): Promise<void> {
    const lease = this.client.lease(this.ttlS);
    this.memberLease = lease;
    lease.on('lost', () => {
      if (!this.closed) setTimeout(() => void this.registerMember().catch(() => undefined), 500);
    });
    await lease.put(`${this.prefix}members/${this.address}`).value(JSON.stringify({ address: this.address, pid: process.pid }));
  }

  private runCampaign(): void {
    if (this.closed) return;
    const campaign = this.election.campaign(this.address);
    this.campaign = campaign;
    // etcd3 keeps the campaign's lease private; its keepalive events tell us the session is fresh.
    // A renewal counts from when it was sent: etcd extended the lease no earlier than that.
    const lease = (campaign as unknown as { lease?: Lease }).lease;
    this.watchdogArmed = !!lease;
    if (!lease) this.log.warn('etcd3 campaign lease not accessible: relying on session errors and write fencing only');
    this.lastKeepaliveOk = Date.now();
    // Answers on the keepalive stream come in request order: each one renews from its request.
    const fired: number[] = [];
    lease?.on('keepaliveEstablished', () => {
      fired.length = 0;
    });
    lease?.on('keepaliveFired', () => {
      fired.push(Date.now());
      if (fired.length > 16) fired.shift();
    });
    lease?.on('keepaliveSucceeded', () => {
      const sentAt = fired.shift();
      if (sentAt !== undefined) this.lastKeepaliveOk = Math.max(this.lastKeepaliveOk, sentAt);
    });
    campaign.on('elected', () => {
      if (this.campaign !== campaign) return;
      void campaign.getCampaignKey().then(
        (key) => {
          if (this.campaign !== campaign || this.closed) return;
          this.leading = true;
          this.hint = this.address;
          this.lastKeepaliveOk = Date.now();
          this.log.info({ key }, 'elected MDS leader');
          this.emit('elected', key);
        },
        (err: Error) => {
          this.log.warn({ err: err.message }, 'campaign key unavailable');
          this.restartCampaign();
        },
      );
    });
    campaign.on('error', (err) => {
      if (this.campaign !== campaign) return;
      this.log.warn({ err: err.message }, 'election session lost');
      this.restartCampaign();
    });
  }

  private restartCampaign(): void {
    const old = this.campaign;
    this.campaign = null;
    this.stepDown();
    void old?.resign().catch(() => undefined);
    if (this.retry || this.closed) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      this.runCampaign();
    }, 500);
  }

  private stepDown(): void {
    if (!this.leading) return;
    this.leading = false;
    if (this.hint === this.address) this.hint = '';
    this.emit('deposed');
  }

  private async refreshHint(): Promise<void> {
    try {
      const leader = (await this.election.leader()) ?? '';
      if (!this.leading) this.hint = leader;
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'reading the election leader failed');
    }
  }

  /** Whether the election session was renewed recently enough that etcd cannot have expired it. */
  private sessionFresh(): boolean {
    const limitMs = Math.max(this.ttlS * 1000 - 500, (this.ttlS * 1000) / 2);
    return !this.watchdogArmed || Date.now() - this.lastKeepaliveOk <= limitMs;
  }

  /** Checked on every RPC: a leader whose session may have lapsed refuses at once, before the watchdog runs. */
  isLeader(): boolean {
    return this.leading && this.sessionFresh();
  }

  leaderAddress(): string {
    return this.hint;
  }

  async members(): Promise<MdsMemberInfo[]> {
    const all = await this.client.getAll().prefix(`${this.prefix}members/`).strings();
    return Object.values(all)
      .map((v) => JSON.parse(v) as { address: string; pid: number })
      .map((m) => ({ address: m.address, pid: m.pid, leader: m.address === this.hint }))
      .sort((a, b) => Number(b.leader) - Number(a.leader) || a.address.localeCompare(b.address));
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.watchdog) clearInterval(this.watchdog);
    if (this.retry) clearTimeout(this.retry);
    this.stepDown();
    const campaign = this.campaign;
    this.campaign = null;
    await campaign?.resign().catch(() => undefined);
    if (this.hintTimer) clearInterval(this.hintTimer);
    await this.memberLease?.revoke().catch(() => undefined);
  }
}
