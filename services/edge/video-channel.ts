/**
 * One monitor's video on one edge: the codec config, the packets since the
 * latest keyframe (so a new viewer starts decodable at once, with no Redis
 * round trip), and the local subscribers every packet is handed to.
 */
import { configFromJson, type CodecConfig, type CodecConfigJson } from '../../shared/codec.js';
import type { MonitorKeys } from '../../shared/redis-keys.js';
import type { RedisClient } from '../../shared/redis.js';
import { edgeMetrics } from '../../shared/metrics.js';
import { logger } from '../../shared/log.js';
import { CachedPacket } from './cached-packet.js';
import { countSent } from './video-subscription.js';
import type { StreamEntry, StreamReader } from './stream-reader.js';

export interface VideoSubscriber {
  /** Called once the channel is live: the config (if known) and the current GOP, keyframe first. */
  begin(config: CodecConfig | null, gop: readonly CachedPacket[]): void;
  /** Called for every new packet, in stream order; returns the bytes written (0 when skipped). */
  deliver(packet: CachedPacket): number;
  /** Called when capture publishes a new codec config (new generation). */
  codec(config: CodecConfig): void;
}

/** Bounds on the in-memory GOP; past them a new viewer waits for the next keyframe. */
const GOP_MAX_PACKETS = 1500;
const GOP_MAX_BYTES = 64 * 1024 * 1024;

const log = logger('video-channel');

export class VideoChannel {
  readonly subscribers = new Set<VideoSubscriber>();
  private config: CodecConfig | null = null;
  private gop: CachedPacket[] = [];
  private gopBytes = 0;
  private live = false;
  private stopped = false;
  private readonly label: string;
  private readonly m = edgeMetrics();

  constructor(
    readonly monitorId: number,
    private readonly keys: MonitorKeys,
    private readonly redis: RedisClient,
    private readonly reader: StreamReader,
  ) {
    this.label = String(monitorId);
  }

  /** Loads the current GOP from Redis, then follows the stream live. */
  async start(): Promise<void> {
    const [configJson, kf] = await Promise.all([
      this.redis.hget(this.keys.meta, 'config'),
      this.redis.hget(this.keys.meta, 'kf'),
    ]);
    if (configJson) this.config = configFromJson(JSON.parse(configJson) as CodecConfigJson);
    let from = '0-0';
    if (kf) {
      const entries = (await this.redis.xrangeBuffer(this.keys.video, kf, '+')) as StreamEntry[];
      for (const e of entries) this.ingest(e, false);
      if (entries.length > 0) from = entries[entries.length - 1][0].toString();
      else from = kf;
    }
    if (this.stopped) return;
    this.live = true;
    this.reader.add(this.keys.video, from, (entries) => this.onEntries(entries));
    for (const sub of this.subscribers) sub.begin(this.config, this.gop);
  }

  stop(): void {
    this.stopped = true;
    this.reader.remove(this.keys.video);
    this.subscribers.clear();
    this.m.subscribers.remove({ monitor: this.label });
  }

  add(sub: VideoSubscriber): void {
    this.subscribers.add(sub);
    this.m.subscribers.set({ monitor: this.label }, this.subscribers.size);
    if (this.live) sub.begin(this.config, this.gop);
  }

  remove(sub: VideoSubscriber): void {
    this.subscribers.delete(sub);
    this.m.subscribers.set({ monitor: this.label }, this.subscribers.size);
  }

  get codecConfig(): CodecConfig | null {
    return this.config;
  }

  /** The latest keyframe, for one-shot requests; null before the first one. */
  latestKeyframe(): CachedPacket | null {
    return this.gop[0] ?? null;
  }

  private onEntries(entries: StreamEntry[]): void {
    for (const e of entries) this.ingest(e, true);
  }

  private ingest([idBuf, fields]: StreamEntry, fanOut: boolean): void {
    const field = fields[0]?.toString();
    if (field === 'c') {
      this.config = configFromJson(JSON.parse(fields[1].toString()) as CodecConfigJson);
      if (fanOut) for (const sub of this.subscribers) sub.codec(this.config);
      return;
    }
    if (field !== 'p') return;
    let packet: CachedPacket;
    try {
      packet = new CachedPacket(idBuf.toString(), fields[1], this.config);
    } catch (err) {
      log.warn('skipping malformed packet', { monitor: this.monitorId, error: (err as Error).message });
      return;
    }
    this.remember(packet);
    if (!fanOut) return;
    const lag = (Date.now() - packet.header.captureTime) / 1000;
    this.m.packets.inc({ monitor: this.label });
    this.m.readerLag.set({ monitor: this.label }, lag);
    if (this.subscribers.size === 0) return;
    let writes = 0;
    let bytes = 0;
    for (const sub of this.subscribers) {
      const n = sub.deliver(packet);
      if (n > 0) {
        writes++;
        bytes += n;
      }
    }
    if (writes > 0) countSent(this.m, writes, bytes);
    this.m.latency.observe({ monitor: this.label }, (Date.now() - packet.header.captureTime) / 1000);
  }

  private remember(packet: CachedPacket): void {
    if (packet.keyframe) {
      this.gop = [packet];
      this.gopBytes = packet.raw.length;
      return;
    }
    if (this.gop.length === 0) return;
    if (this.gop.length >= GOP_MAX_PACKETS || this.gopBytes + packet.raw.length > GOP_MAX_BYTES) {
      this.gop = [];
      this.gopBytes = 0;
      return;
    }
    this.gop.push(packet);
    this.gopBytes += packet.raw.length;
  }
}
