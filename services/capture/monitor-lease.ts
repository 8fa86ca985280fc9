/**
 * One monitor's capture lease: a Redis key with a TTL holding a fencing
 * token. Only the holder's writes pass the publish script, so a capture that
 * was paused or cut off past the TTL cannot write once another took over.
 */
import { monitorKeys, type MonitorKeys } from '../../shared/redis-keys.js';
import { withScripts } from '../../shared/redis-scripts.js';
import type { RedisClient } from '../../shared/redis.js';
import type { WriteLease } from './publisher.js';

export type RenewResult = 'renewed' | 'retaken' | 'lost';

export class MonitorLease implements WriteLease {
  private constructor(
    private readonly redis: ReturnType<typeof withScripts<RedisClient>>,
    private readonly keys: MonitorKeys,
    readonly monitorId: number,
    readonly token: string,
    readonly ttlMs: number,
    /** Who held the lease before (a capture process id), '' if nobody or a graceful hand-over. */
    readonly previousOwner: string,
  ) {}

  /** Takes the lease if it is free; null when another process holds it. */
  static async acquire(redis: RedisClient, monitorId: number, taker: string, ttlMs: number): Promise<MonitorLease | null> {
    const r = withScripts(redis);
    const keys = monitorKeys(monitorId);
    const [taken, token, previous] = await r.zmLeaseAcquire(keys.lease, keys.fence, keys.meta, taker, ttlMs);
    return taken === 1 ? new MonitorLease(r, keys, monitorId, token, ttlMs, previous ?? '') : null;
  }

  async renew(): Promise<RenewResult> {
    const r = await this.redis.zmLeaseRenew(this.keys.lease, this.token, this.ttlMs);
    return r === 1 ? 'renewed' : r === 2 ? 'retaken' : 'lost';
  }

  /** Gives the lease back at once, so another node need not wait for the TTL. */
  async release(): Promise<void> {
    await this.redis.zmLeaseRelease(this.keys.lease, this.keys.meta, this.token);
  }
}
