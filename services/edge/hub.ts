/**
 * The edge's registry of live channels: one VideoChannel and one
 * EventsChannel per monitor with local subscribers, each fed by a shared
 * StreamReader. A channel with no subscribers lingers briefly (viewers often
 * come back at once) and is then closed.
 */
import { monitorKeys } from '../../shared/redis-keys.js';
import { configFromJson, type CodecConfig, type CodecConfigJson } from '../../shared/codec.js';
import { duplicate, isCluster, type RedisClient } from '../../shared/redis.js';
import { edgeMetrics } from '../../shared/metrics.js';
import { logger } from '../../shared/log.js';
import { StreamReader } from './stream-reader.js';
import { VideoChannel } from './video-channel.js';
import { EventsChannel } from './events-channel.js';
import { MonitorDirectory, answered } from './monitor-directory.js';

const LINGER_MS = 10_000;
const QUEUE_DEPTH_EVERY_MS = 5_000;
const log = logger('hub');

interface Entry<T> {
  channel: T;
  ready: Promise<void>;
  users: number;
  linger: NodeJS.Timeout | null;
}

/** One use of a channel; release() gives back exactly this use, of exactly this channel. */
export interface ChannelUse<T> {
  channel: T;
  ready: Promise<void>;
  release(): void;
}

export class Hub {
  readonly directory: MonitorDirectory;
  private readonly video = new Map<number, Entry<VideoChannel>>();
  private readonly events = new Map<number, Entry<EventsChannel>>();
  private readonly readers = new Map<string, StreamReader>();
  private readonly depthTimer: NodeJS.Timeout;
  private readonly m = edgeMetrics();

  constructor(readonly redis: RedisClient) {
    this.directory = new MonitorDirectory(redis);
    // sampleQueueDepth() catches its own errors.
    this.depthTimer = setInterval(() => void this.sampleQueueDepth(), QUEUE_DEPTH_EVERY_MS).unref();
  }

  /** Takes a use of the monitor's video channel (starting it if needed). */
  acquireVideo(monitorId: number): ChannelUse<VideoChannel> {
    return this.acquire(this.video, monitorId, () => {
      const keys = monitorKeys(monitorId);
      return new VideoChannel(monitorId, keys, this.redis, this.readerFor(monitorId));
    });
  }

  acquireEvents(monitorId: number): ChannelUse<EventsChannel> {
    return this.acquire(this.events, monitorId, () => {
      const keys = monitorKeys(monitorId);
      return new EventsChannel(monitorId, keys, this.redis, this.readerFor(monitorId));
    });
  }

  /** Every reader gets answers from Redis in time (or has nothing to read); kept in zmcast_edge_reader_healthy too. */
  checkReaders(): boolean {
    const healthy = [...this.readers.values()].every((r) => r.healthy);
    this.m.readerHealthy.set(healthy ? 1 : 0);
    return healthy;
  }

  /** A running video channel, if this edge has one, for one-shot requests. */
  videoChannel(monitorId: number): VideoChannel | undefined {
    return this.video.get(monitorId)?.channel;
  }

  /** The monitor's codec config: the local channel's if following it, else from Redis. */
  async currentConfig(monitorId: number): Promise<CodecConfig | null> {
    const local = this.video.get(monitorId)?.channel.codecConfig;
    if (local) return local;
    // Unknown while Redis does not answer: the subscription starts and gets the config when it comes.
    const json = await answered(this.redis.hget(monitorKeys(monitorId).meta, 'config'));
    return json ? configFromJson(JSON.parse(json) as CodecConfigJson) : null;
  }

  async stop(): Promise<void> {
    clearInterval(this.depthTimer);
    for (const map of [this.video, this.events]) {
      for (const e of map.values()) {
        if (e.linger) clearTimeout(e.linger);
        e.channel.stop();
      }
      map.clear();
    }
    await Promise.all([...this.readers.values()].map((r) => r.stop()));
    this.readers.clear();
  }

  /**
   * On a single Redis one reader serves every monitor; on a Cluster a
   * multi-key XREAD must stay in one slot, and each monitor is its own slot.
   */
  private readerFor(monitorId: number): StreamReader {
    const cluster = isCluster(this.redis);
    const key = cluster ? `m:${monitorId}` : 'all';
    let reader = this.readers.get(key);
    if (!reader) {
      reader = new StreamReader(duplicate(this.redis, `zmcast-edge-reader-${key}`), this.redis, {
        blockMs: cluster ? 250 : 5000,
        count: 500,
        unblock: !cluster,
      });
      this.readers.set(key, reader);
    }
    return reader;
  }

  private acquire<T extends VideoChannel | EventsChannel>(map: Map<number, Entry<T>>, id: number, make: () => T): ChannelUse<T> {
    let entry = map.get(id);
    if (!entry) {
      const channel = make();
      // start() retries until Redis answers; it only fails on a bug.
      const ready = channel.start().catch((err) => {
        log.error('channel failed to start', { monitor: id, error: (err as Error).stack });
        throw err;
      });
      entry = { channel, ready, users: 0, linger: null };
      map.set(id, entry);
    }
    if (entry.linger) {
      clearTimeout(entry.linger);
      entry.linger = null;
    }
    entry.users++;
    const held = entry;
    let released = false;
    return {
      channel: held.channel,
      ready: held.ready,
      release: () => {
        if (released) return;
        released = true;
        this.release(map, id, held);
      },
    };
  }

  private release<T extends VideoChannel | EventsChannel>(map: Map<number, Entry<T>>, id: number, entry: Entry<T>): void {
    if (--entry.users > 0) return;
    entry.linger = setTimeout(() => {
      if (entry.users > 0) return;
      if (map.get(id) === entry) map.delete(id);
      entry.channel.stop();
      this.dropIdleReader(id);
    }, LINGER_MS);
    entry.linger.unref();
  }

  /** On a Cluster each monitor has its own reader: stop it once neither channel uses it. */
  private dropIdleReader(id: number): void {
    if (!isCluster(this.redis) || this.video.has(id) || this.events.has(id)) return;
    const key = `m:${id}`;
    const reader = this.readers.get(key);
    if (!reader || reader.size > 0) return;
    this.readers.delete(key);
    reader.stop().catch((err) => log.warn('stopping a reader failed', { monitor: id, error: (err as Error).message }));
  }

  private async sampleQueueDepth(): Promise<void> {
    const m = this.m;
    this.checkReaders();
    await Promise.all([...this.video.keys()].map(async (id) => {
      try {
        m.streamLength.set({ monitor: String(id) }, await this.redis.xlen(monitorKeys(id).video));
      } catch {
        // Redis trouble shows in readyz and reader metrics; a missed sample is harmless.
      }
    }));
  }
}
