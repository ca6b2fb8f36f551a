// Everything the leading MDS runs: state loaded from the store, the managers, and the
// periodic work (session expiry, health checks, scheduling, placement, trash collection).
// Built on election, torn down at once when leadership is lost.
import type { Logger } from '../common/log.js';
import type { MdsConfig } from './config.js';
import type { KvStore } from './kv.js';
import { BundledIdAllocator } from './ids.js';
import { keys } from './records.js';
import { MdsState } from './state.js';
import { FilesystemManager } from './filesystems.js';
import { Topology } from './topology.js';
import { Scheduler } from './scheduler.js';
import { CopysetCaller } from './copyset-caller.js';
import { VolumeManager } from './volumes.js';
import { ChunkClient } from '../chunkserver/chunk-client.js';
import { copysetKey } from './state.js';
import { StatusQuotas } from './status-quotas.js';

export class LeaderContext {
  readonly chunkIds: BundledIdAllocator;
  readonly topology: Topology;
  readonly filesystems: FilesystemManager;
  readonly scheduler: Scheduler;
  readonly volumes: VolumeManager;
  /** The filesystems' quotas for ClusterStatus and the status page (read from the metaservers). */
  readonly quotas: StatusQuotas;
  private readonly caller = new CopysetCaller();
  /** Deletes chunks of purged volumes, finding copyset leaders from this leader's view. */
  private readonly chunks: ChunkClient;
  private readonly timers: NodeJS.Timeout[] = [];
  private stopped = false;

  private constructor(
    readonly state: MdsState,
    private readonly config: MdsConfig,
    private readonly log: Logger,
  ) {
    this.quotas = new StatusQuotas(state);
    this.chunkIds = new BundledIdAllocator(state.kv, keys.counter('chunk'), config.ids.chunkIdBundle);
    this.topology = new Topology(state, config, this.caller, log, (key, address) => this.scheduler.isJoining(key, address));
    this.filesystems = new FilesystemManager(state, config, this.topology, log);
    this.scheduler = new Scheduler(state, this.topology, config, log);
    this.chunks = new ChunkClient(async (poolId, copysetId) => {
      const key = copysetKey(poolId, copysetId);
      return { peers: state.copysets.get(key)?.peers ?? [], leader: state.copysetRuntime.get(key)?.leader ?? '', epoch: state.copysets.get(key)?.epoch ?? 0 };
    }, { deadlineMs: 10_000 });
    this.volumes = new VolumeManager(state, config, this.topology, this.chunkIds, { deleteChunk: (c) => this.chunks.delete(c) }, log);
  }

  static async start(kv: KvStore, config: MdsConfig, log: Logger): Promise<LeaderContext> {
    const state = await new MdsState(kv).load();
    const ctx = new LeaderContext(state, config, log);
    await ctx.volumes.load();
    ctx.every(config.sessions.checkIntervalMs, () => ctx.filesystems.expireSessions());
    ctx.every(config.health.checkIntervalMs, async () => ctx.scheduler.checkHealth());
    if (config.scheduler.enabled) ctx.every(config.scheduler.intervalMs, async () => ctx.scheduler.schedule());
    ctx.every(Math.max(1000, config.health.checkIntervalMs), () => ctx.placePending());
    ctx.every(config.deletion.intervalMs, () => ctx.filesystems.collectTrash());
    ctx.every(config.volumes.checkIntervalMs, () => ctx.volumes.tick());
    log.info({ filesystems: state.filesystems.size, metaservers: state.metaservers.size, copysets: state.copysets.size }, 'leader state loaded');
    return ctx;
  }

  /** Runs `fn` every `ms`, never overlapping itself, logging failures. */
  private every(ms: number, fn: () => Promise<unknown>): void {
    let running = false;
    const t = setInterval(() => {
      if (running || this.stopped) return;
      running = true;
      fn()
        .catch((err: Error) => this.log.warn({ err: err.message }, 'periodic task failed'))
        .finally(() => {
          running = false;
        });
    }, ms);
    t.unref();
    this.timers.push(t);
  }

  /** Filesystems created while too few metaservers were online get their partitions now. */
  private async placePending(): Promise<void> {
    for (const fs of [...this.state.filesystems.values()]) {
      if (fs.status === 'NEW') {
        await this.filesystems.place(fs);
        continue;
      }
      // Every partition out of inode ids (as their leaders report): add one before mounts stall.
      const parts = this.state.partitionsOf(fs.fsId);
      if (parts.length > 0 && parts.every((p) => this.state.partitionRuntime.get(p.partitionId)?.readOnly)) {
        this.log.info({ fs: fs.name }, 'all partitions are full: creating one more');
        await this.topology.createPartitions(fs.fsId, 1);
      }
    }
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.caller.close();
    this.chunks.close();
    this.quotas.close();
  }
}
