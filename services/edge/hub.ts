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
import { MonitorDirectory } from './monitor-directory.js';

const LINGER_MS = 10_000;
const QUEUE_DEPTH_EVERY_MS = 5_000;
const log = logger('hub');

interface Entry<T> {
  channel: T;
  ready: Promise<void>;
  users: number;
  linger: NodeJS.Timeout | null;
}

export class Hub {
  readonly directory: MonitorDirectory;
  private readonly video = new Map<number, Entry<VideoChannel>>();
  private readonly events = new Map<number, Entry<EventsChannel>>();
  private readonly readers = new Map<string, StreamReader>();
  private readonly depthTimer: NodeJS.Timeout;

  constructor(readonly redis: RedisClient) {
    this.directory = new MonitorDirectory(redis);
    this.depthTimer = setInterval(() => void this.sampleQueueDepth(), QUEUE_DEPTH_EVERY_MS).unref();
  }

  /** Takes a use of the monitor's video channel (starting it if needed). */
  acquireVideo(monitorId: number): Entry<VideoChannel> {
    return this.acquire(this.video, monitorId, () => {
      const keys = monitorKeys(monitorId);
      return new VideoChannel(monitorId, keys, this.redis, this.readerFor(monitorId));
    });
  }

  releaseVideo(monitorId: number): void {
    this.release(this.video, monitorId);
  }

  acquireEvents(monitorId: number): Entry<EventsChannel> {
    return this.acquire(this.events, monitorId, () => {
      const keys = monitorKeys(monitorId);
      return new EventsChannel(monitorId, keys, this.redis, this.readerFor(monitorId));
    });
  }

  releaseEvents(monitorId: number): void {
    this.release(this.events, monitorId);
  }

  /** A running video channel, if this edge has one, for one-shot requests. */
  videoChannel(monitorId: number): VideoChannel | undefined {
    return this.video.get(monitorId)?.channel;
  }

  /** The monitor's codec config: the local channel's if following it, else from Redis. */
  async currentConfig(monitorId: number): Promise<CodecConfig | null> {
    const local = this.video.get(monitorId)?.channel.codecConfig;
    if (local) return local;
    const json = await this.redis.hget(monitorKeys(monitorId).meta, 'config');
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

  private acquire<T extends VideoChannel | EventsChannel>(map: Map<number, Entry<T>>, id: number, make: () => T): Entry<T> {
    let entry = map.get(id);
    if (!entry) {
      const channel = make();
      const ready = channel.start().catch((err) => {
        log.error('channel failed to start', { monitor: id, error: (err as Error).message });
        map.delete(id);
        channel.stop();
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
    return entry;
  }

  private release<T extends VideoChannel | EventsChannel>(map: Map<number, Entry<T>>, id: number): void {
    const entry = map.get(id);
    if (!entry || --entry.users > 0) return;
    entry.linger = setTimeout(() => {
      if (entry.users > 0 || map.get(id) !== entry) return;
      map.delete(id);
      entry.channel.stop();
    }, LINGER_MS);
    entry.linger.unref();
  }

  private async sampleQueueDepth(): Promise<void> {
    const m = edgeMetrics();
    await Promise.all([...this.video.keys()].map(async (id) => {
      try {
        m.streamLength.set({ monitor: String(id) }, await this.redis.xlen(monitorKeys(id).video));
      } catch {
        // Redis trouble shows in readyz and reader metrics; a missed sample is harmless.
      }
    }));
  }
}
