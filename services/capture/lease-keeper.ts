/**
 * Decides which of its candidate monitors this capture process captures,
 * through leases in Redis, one tick at a time:
 *   - heartbeat: the process's entry in the set of live capture processes;
 *   - renew every lease held; a lease lost to another process stops capture;
 *   - balance (pool mode): hold about a fair share (candidates / live
 *     processes); above it, hand one monitor over per tick;
 *   - take free leases while under the share, and any lease that stayed free
 *     for two ticks whatever the share, so no monitor is left uncaptured.
 * A process killed with kill -9 stops renewing; its leases expire after the
 * TTL and the others take them at their next tick.
 */
import { CAPTURE_NODES_KEY, monitorKeys } from '../../shared/redis-keys.js';
import type { RedisClient } from '../../shared/redis.js';
import { captureMetrics } from '../../shared/metrics.js';
import { logger } from '../../shared/log.js';
import { within } from '../../shared/within.js';
import { MonitorLease } from './monitor-lease.js';

export interface LeaseKeeperHooks {
  /** The lease was taken: start capturing. */
  acquired(lease: MonitorLease): Promise<void>;
  /** The lease went to another process: stop capturing (writes are fenced already). */
  lost(monitorId: number): Promise<void>;
  /** Stop capturing before the lease is handed over. */
  handOver(monitorId: number): Promise<void>;
}

export interface LeaseKeeperOptions {
  /** This process's id, unique among capture processes (node name, pid, random). */
  processId: string;
  ttlMs: number;
  /** Pool mode: spread monitors over the live processes. Off where an assignment says who captures. */
  balance: boolean;
}

const FREE_TICKS_BEFORE_ANY_SHARE = 2;
/** How long stopping waits for Redis before leaving leases to expire. */
const STOP_WAIT_MS = 1000;
const log = logger('leases');

export class LeaseKeeper {
  private candidates: number[] = [];
  private readonly held = new Map<number, MonitorLease>();
  private readonly freeTicks = new Map<number, number>();
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> = Promise.resolve();
  private stopped = false;
  private tickFailing = false;
  private readonly m = captureMetrics();

  constructor(
    private readonly redis: RedisClient,
    private readonly opts: LeaseKeeperOptions,
    private readonly hooks: LeaseKeeperHooks,
  ) {}

  get tickMs(): number {
    return Math.max(100, Math.floor(this.opts.ttlMs / 5));
  }

  /** Monitors this process holds the lease of. */
  get owned(): number[] {
    return [...this.held.keys()].sort((a, b) => a - b);
  }

  /** The lease of a monitor this process captures. */
  lease(monitorId: number): MonitorLease | undefined {
    return this.held.get(monitorId);
  }

  /**
   * Runs the first tick now (so a lone process captures at once), then one
   * every ttl/5. Waits for the first tick at most one TTL: with Redis away it
   * completes when Redis is back, and start-up goes on meanwhile.
   */
  async start(candidates: number[]): Promise<void> {
    this.candidates = [...candidates];
    await within(this.tick(), this.opts.ttlMs);
    this.schedule();
  }

  /** Changes the candidates; a lease held for a monitor no longer listed must be released by the caller. */
  setCandidates(candidates: number[]): void {
    this.candidates = [...candidates];
  }

  /** Runs a tick now, after the one in progress. */
  tick(): Promise<void> {
    this.ticking = this.ticking.then(() => this.tickNow()).catch((err) => {
      if (!this.tickFailing) log.warn('lease tick failed; capture goes on with the leases it holds', { error: (err as Error).message });
      this.tickFailing = true;
    });
    return this.ticking;
  }

  /** Hands one lease back (after the caller stopped its capture). */
  async release(monitorId: number): Promise<void> {
    const lease = this.held.get(monitorId);
    if (!lease) return;
    this.held.delete(monitorId);
    this.m.leasesOwned.set(this.held.size);
    // Bounded: with Redis away the lease simply expires after its TTL.
    if ((await within(lease.release().then(() => true), STOP_WAIT_MS)) === undefined) {
      log.warn('lease not released (Redis did not answer); it expires by itself', { monitor: monitorId });
    }
  }

  /** Forgets a lease another process took. */
  forget(monitorId: number): void {
    if (this.held.delete(monitorId)) {
      this.m.leaseLosses.inc({ monitor: String(monitorId) });
      this.m.leasesOwned.set(this.held.size);
    }
  }

  /** Stops ticking and leaves the set of live processes; the caller releases its leases. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await within(this.ticking, STOP_WAIT_MS);
    await within(this.redis.zrem(CAPTURE_NODES_KEY, this.opts.processId), STOP_WAIT_MS);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      // oxlint-disable-next-line typescript/no-floating-promises -- tick() never rejects (it logs its failures), and schedule() only arms a timer
      void this.tick().then(() => this.schedule());
    }, this.tickMs);
    this.timer.unref();
  }

  private async tickNow(): Promise<void> {
    if (this.stopped) return;
    const now = Date.now();
    const live = await this.redis.multi()
      .zadd(CAPTURE_NODES_KEY, now + this.opts.ttlMs, this.opts.processId)
      .zremrangebyscore(CAPTURE_NODES_KEY, '-inf', now)
      .zcard(CAPTURE_NODES_KEY)
      .exec();
    const processes = Math.max(1, Number(live?.[2]?.[1] ?? 1));
    for (const [id, lease] of [...this.held]) {
      if (this.stopped) return;
      const r = await lease.renew();
      if (r === 'lost') {
        log.warn('lease lost to another capture process', { monitor: id });
        this.forget(id);
        await this.hooks.lost(id);
      } else if (r === 'retaken') {
        log.info('lease taken again after Redis lost it', { monitor: id });
      }
    }
    if (this.tickFailing) log.info('lease ticks work again', { held: this.held.size });
    this.tickFailing = false;
    const share = this.opts.balance ? Math.ceil(this.candidates.length / processes) : Infinity;
    if (this.held.size > share) {
      const id = Math.max(...this.held.keys());
      log.info('handing a monitor over to balance the pool', { monitor: id, held: this.held.size, share, processes });
      await this.hooks.handOver(id);
      await this.release(id);
      return;
    }
    // In id order: processes starting together contend monitor by monitor, and the loser of each moves on.
    for (const id of this.candidates.filter((c) => !this.held.has(c)).sort((x, y) => x - y)) {
      if (this.stopped) return;
      if (this.held.size >= share) {
        // Over the share only a lease nobody took for a while: another process may be about to.
        if ((await this.redis.exists(monitorKeys(id).lease)) === 1) {
          this.freeTicks.delete(id);
          continue;
        }
        const seen = (this.freeTicks.get(id) ?? 0) + 1;
        this.freeTicks.set(id, seen);
        if (seen < FREE_TICKS_BEFORE_ANY_SHARE) continue;
      }
      const lease = await MonitorLease.acquire(this.redis, id, this.opts.processId, this.opts.ttlMs);
      if (!lease) {
        this.freeTicks.delete(id);
        continue;
      }
      this.freeTicks.delete(id);
      this.held.set(id, lease);
      this.m.leasesOwned.set(this.held.size);
      await this.hooks.acquired(lease);
    }
  }
}
