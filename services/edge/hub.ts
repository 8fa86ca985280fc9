/**
 * The edge's registry of live channels: one VideoChannel per monitor stream
 * (main, sub) and one EventsChannel per monitor with local subscribers. On a single Redis
 * video is pushed to one PushReader and events are read by one StreamReader; on a Cluster
 * each monitor has a StreamReader of its own for both. A channel with no subscribers lingers briefly (viewers often
 * come back at once) and is then closed.
 */
import { monitorKeys, SUB_STREAMS_KEY, type Quality } from '../../shared/redis-keys.js';
import { configFromJson, type CodecConfig, type CodecConfigJson } from '../../shared/codec.js';
import { isCluster, type RedisClient } from '../../shared/redis.js';
import { edgeMetrics } from '../../shared/metrics.js';
import { logger } from '../../shared/log.js';
import { StreamReader, type StreamFeed } from './stream-reader.js';
import { PushReader } from './push-reader.js';
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
  /** By `videoKey(monitor, quality)`. */
  private readonly video = new Map<string, Entry<VideoChannel>>();
  private readonly events = new Map<number, Entry<EventsChannel>>();
  private readonly readers = new Map<string, StreamFeed>();
  private readonly depthTimer: NodeJS.Timeout;
  private readonly m = edgeMetrics();

  constructor(readonly redis: RedisClient) {
    this.directory = new MonitorDirectory(redis);
    // sampleQueueDepth() catches its own errors.
    this.depthTimer = setInterval(() => void this.sampleQueueDepth(), QUEUE_DEPTH_EVERY_MS).unref();
  }

  /** Takes a use of the video channel of one of the monitor's streams (starting it if needed). */
  acquireVideo(monitorId: number, quality: Quality = 'main'): ChannelUse<VideoChannel> {
    return this.acquire(this.video, videoKey(monitorId, quality), monitorId, () => {
      const keys = monitorKeys(monitorId, quality);
      return new VideoChannel(monitorId, keys, this.redis, this.videoFeed(monitorId), quality);
    });
  }

  acquireEvents(monitorId: number): ChannelUse<EventsChannel> {
    return this.acquire(this.events, monitorId, monitorId, () => {
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
  videoChannel(monitorId: number, quality: Quality = 'main'): VideoChannel | undefined {
    return this.video.get(videoKey(monitorId, quality))?.channel;
  }

  /** A stream's codec config: the local channel's if following it, else from Redis. */
  async currentConfig(monitorId: number, quality: Quality = 'main'): Promise<CodecConfig | null> {
    const local = this.video.get(videoKey(monitorId, quality))?.channel.codecConfig;
    if (local) return local;
    // Unknown while Redis does not answer: the subscription starts and gets the config when it comes.
    const json = await answered(this.redis.hget(monitorKeys(monitorId, quality).meta, 'config'));
    return json ? configFromJson(JSON.parse(json) as CodecConfigJson) : null;
  }

  /**
   * Whether the monitor has a sub-stream: capture lists it in the registry
   * (and removes it when the monitor loses its second source). Unknown while
   * Redis does not answer counts as no: the main stream is served instead.
   */
  async hasSubStream(monitorId: number): Promise<boolean> {
    if (this.video.get(videoKey(monitorId, 'sub'))?.channel.codecConfig) return true;
    return (await answered(this.redis.sismember(SUB_STREAMS_KEY, String(monitorId)))) === 1;
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

  /** Video is pushed on a single Redis (no command per packet); a Cluster reads it like events. */
  private videoFeed(monitorId: number): StreamFeed {
    if (isCluster(this.redis)) return this.readerFor(monitorId);
    let feed = this.readers.get('push');
    if (!feed) {
      feed = new PushReader(this.redis, 'zmcast-edge-push');
      this.readers.set('push', feed);
    }
    return feed;
  }

  /**
   * On a single Redis one reader serves every monitor; on a Cluster a
   * multi-key XREAD must stay in one slot, and each monitor is its own slot.
   */
  private readerFor(monitorId: number): StreamFeed {
    const cluster = isCluster(this.redis);
    const key = cluster ? `m:${monitorId}` : 'all';
    let reader = this.readers.get(key);
    if (!reader) {
      reader = new StreamReader(this.redis, `zmcast-edge-reader-${key}`, {
        blockMs: cluster ? 250 : 5000,
        count: 500,
        unblock: !cluster,
      });
      this.readers.set(key, reader);
    }
    return reader;
  }

  private acquire<K, T extends VideoChannel | EventsChannel>(map: Map<K, Entry<T>>, key: K, id: number, make: () => T): ChannelUse<T> {
    let entry = map.get(key);
    if (!entry) {
      const channel = make();
      // start() retries until Redis answers; it only fails on a bug.
      const ready = channel.start().catch((err) => {
        log.error('channel failed to start', { monitor: id, error: (err as Error).stack });
        throw err;
      });
      entry = { channel, ready, users: 0, linger: null };
      map.set(key, entry);
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
        this.release(map, key, id, held);
      },
    };
  }

  private release<K, T extends VideoChannel | EventsChannel>(map: Map<K, Entry<T>>, key: K, id: number, entry: Entry<T>): void {
    if (--entry.users > 0) return;
    entry.linger = setTimeout(() => {
      if (entry.users > 0) return;
      if (map.get(key) === entry) map.delete(key);
      entry.channel.stop();
      this.dropIdleReader(id);
    }, LINGER_MS);
    entry.linger.unref();
  }

  /** On a Cluster each monitor has its own reader: stop it once none of its channels uses it. */
  private dropIdleReader(id: number): void {
    if (!isCluster(this.redis) || this.video.has(videoKey(id, 'main')) || this.video.has(videoKey(id, 'sub')) || this.events.has(id)) return;
    const key = `m:${id}`;
    const reader = this.readers.get(key);
    if (!reader || reader.size > 0) return;
    this.readers.delete(key);
    reader.stop().catch((err) => log.warn('stopping a reader failed', { monitor: id, error: (err as Error).message }));
  }

  private async sampleQueueDepth(): Promise<void> {
    const m = this.m;
    this.checkReaders();
    await Promise.all([...this.video.values()].map(async ({ channel }) => {
      try {
        m.streamLength.set({ monitor: channel.label }, await this.redis.xlen(channel.keys.video));
      } catch {
        // Redis trouble shows in readyz and reader metrics; a missed sample is harmless.
      }
    }));
  }
}

function videoKey(monitorId: number, quality: Quality): string {
  return `${monitorId}:${quality}`;
}
