/**
 * The warm decoders of one worker, by monitor, started on demand and stopped
 * a few seconds after the last use. A monitor runs in full mode while any
 * user needs every frame (snapshots, derived streams faster than the
 * keyframe rate), else in keyframe mode; a change of mode restarts the feed
 * at the newest keyframe.
 */
import { duplicate, type RedisClient } from '../../shared/redis.js';
import { MonitorFeed, type FeedMode } from './monitor-feed.js';

interface Demand {
  feed: MonitorFeed;
  /** Derived streams holding the feed, by the mode they need. */
  holds: Record<FeedMode, number>;
  /** Until when a snapshot keeps the feed warm (full mode). */
  warmUntil: number;
}

const REAP_EVERY_MS = 500;

export class Feeds {
  private readonly demands = new Map<number, Demand>();
  private readonly reaper: NodeJS.Timeout;

  constructor(private readonly redis: RedisClient, private readonly idleMs: number) {
    this.reaper = setInterval(() => this.reap(), REAP_EVERY_MS);
    this.reaper.unref();
  }

  get size(): number {
    return this.demands.size;
  }

  /** A full-mode feed for a snapshot, kept warm for idleMs after this call. */
  forSnapshot(monitorId: number): MonitorFeed {
    const d = this.demand(monitorId);
    d.warmUntil = Date.now() + this.idleMs;
    return this.ensure(monitorId, d).feed;
  }

  /** Holds a feed of at least `mode` for a derived stream; call the returned function to let it go. */
  hold(monitorId: number, mode: FeedMode): { feed: () => MonitorFeed; release: () => void } {
    const d = this.demand(monitorId);
    d.holds[mode]++;
    this.ensure(monitorId, d);
    let released = false;
    return {
      // The feed object changes when the mode does: callers ask for it each time.
      feed: () => this.ensure(monitorId, this.demands.get(monitorId) ?? this.demand(monitorId)).feed,
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

  private demand(monitorId: number): Demand {
    let d = this.demands.get(monitorId);
    if (!d) {
      d = { feed: null as unknown as MonitorFeed, holds: { keyframe: 0, full: 0 }, warmUntil: 0 };
      this.demands.set(monitorId, d);
    }
    return d;
  }

  private wanted(d: Demand): FeedMode | null {
    if (d.holds.full > 0 || d.warmUntil > Date.now()) return 'full';
    return d.holds.keyframe > 0 ? 'keyframe' : null;
  }

  /** Starts or restarts the feed so that it runs in the mode the demand needs now. */
  private ensure(monitorId: number, d: Demand): Demand {
    const mode = this.wanted(d) ?? 'keyframe';
    if (d.feed?.mode !== mode) {
      const old = d.feed;
      d.feed = new MonitorFeed(this.redis, () => duplicate(this.redis, `zmcast-feed-${monitorId}`), monitorId, mode);
      // oxlint-disable-next-line typescript/no-floating-promises -- stop() never rejects: it only disconnects and awaits the loop
      if (old) void old.stop();
    }
    return d;
  }

  private reap(): void {
    for (const [monitorId, d] of this.demands) {
      const mode = this.wanted(d);
      if (mode === null) {
        this.demands.delete(monitorId);
        // oxlint-disable-next-line typescript/no-floating-promises -- stop() never rejects: it only disconnects and awaits the loop
        void d.feed.stop();
      } else if (mode !== d.feed.mode) {
        this.ensure(monitorId, d);
      }
    }
  }
}
