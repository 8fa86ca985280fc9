/**
 * The warm decoders of one worker, by monitor and stream (main or sub), started on demand and stopped
 * a few seconds after the last use. A monitor runs in full mode while any
 * user needs every frame (snapshots, derived streams faster than the
 * keyframe rate), else in keyframe mode; a change of mode restarts the feed
 * at the newest keyframe.
 */
import type { Quality } from '../../shared/redis-keys.js';
import { duplicate, type RedisClient } from '../../shared/redis.js';
import { MonitorFeed, type FeedMode } from './monitor-feed.js';

interface Demand {
  monitorId: number;
  quality: Quality;
  feed: MonitorFeed;
  /** Derived streams holding the feed, by the mode they need. */
  holds: Record<FeedMode, number>;
  /** Until when a snapshot keeps the feed warm (full mode). */
  warmUntil: number;
}

const REAP_EVERY_MS = 500;

export class Feeds {
  /** By `monitor/quality`. */
  private readonly demands = new Map<string, Demand>();
  private readonly reaper: NodeJS.Timeout;

  constructor(private readonly redis: RedisClient, private readonly idleMs: number) {
    this.reaper = setInterval(() => this.reap(), REAP_EVERY_MS);
    this.reaper.unref();
  }

  get size(): number {
    return this.demands.size;
  }

  /** A full-mode feed for a snapshot, kept warm for idleMs after this call. */
  forSnapshot(monitorId: number, quality: Quality): MonitorFeed {
    const d = this.demand(monitorId, quality);
    d.warmUntil = Date.now() + this.idleMs;
    return this.ensure(d).feed;
  }

  /** Holds a feed of at least `mode` for a derived stream; call the returned function to let it go. */
  hold(monitorId: number, quality: Quality, mode: FeedMode): { feed: () => MonitorFeed; release: () => void } {
    const d = this.demand(monitorId, quality);
    d.holds[mode]++;
    this.ensure(d);
    let released = false;
    return {
      // The feed object changes when the mode does: callers ask for it each time.
      feed: () => this.ensure(this.demands.get(keyOf(monitorId, quality)) ?? this.demand(monitorId, quality)).feed,
      release: () => {
        if (released) return;
        released = true;
        d.holds[mode]--;
        // Kept warm for a while: a viewer that switches streams comes back quickly.
        d.warmUntil = Math.max(d.warmUntil, Date.now() + (mode === 'full' ? this.idleMs : 0));
      },
    };
  }

  async close(): Promise<void> {
    clearInterval(this.reaper);
    const all = [...this.demands.values()];
    this.demands.clear();
    await Promise.all(all.map((d) => d.feed.stop()));
  }

  private demand(monitorId: number, quality: Quality): Demand {
    let d = this.demands.get(keyOf(monitorId, quality));
    if (!d) {
      d = { monitorId, quality, feed: null as unknown as MonitorFeed, holds: { keyframe: 0, full: 0 }, warmUntil: 0 };
      this.demands.set(keyOf(monitorId, quality), d);
    }
    return d;
  }

  private wanted(d: Demand): FeedMode | null {
    if (d.holds.full > 0 || d.warmUntil > Date.now()) return 'full';
    return d.holds.keyframe > 0 ? 'keyframe' : null;
  }

  /** Starts or restarts the feed so that it runs in the mode the demand needs now. */
  private ensure(d: Demand): Demand {
    const mode = this.wanted(d) ?? 'keyframe';
    if (d.feed?.mode !== mode) {
      const old = d.feed;
      d.feed = new MonitorFeed(this.redis, () => duplicate(this.redis, `zmcast-feed-${d.monitorId}-${d.quality}`), d.monitorId, d.quality, mode);
      // oxlint-disable-next-line typescript/no-floating-promises -- stop() never rejects: it only disconnects and awaits the loop
      if (old) void old.stop();
    }
    return d;
  }

  private reap(): void {
    for (const [key, d] of this.demands) {
      const mode = this.wanted(d);
      if (mode === null) {
        this.demands.delete(key);
        // oxlint-disable-next-line typescript/no-floating-promises -- stop() never rejects: it only disconnects and awaits the loop
        void d.feed.stop();
      } else if (mode !== d.feed.mode) {
        this.ensure(d);
      }
    }
  }
}

const keyOf = (monitorId: number, quality: Quality) => `${monitorId}/${quality}`;
