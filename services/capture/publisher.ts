/**
 * Writes one monitor's packets, codec config, events and status to Redis.
 * Nothing here is awaited on the capture path: commands are pipelined by
 * ioredis and their replies counted when they come back. If Redis falls
 * behind, video is dropped until the next keyframe rather than queued
 * without bound.
 */
import { monitorKeys, MONITORS_KEY, MONITOR_NAMES_KEY, type MonitorKeys } from '../../shared/redis-keys.js';
import { withScripts } from '../../shared/redis-scripts.js';
import { configToJson, type CodecConfig } from '../../shared/codec.js';
import { encodePacket, type Packet } from '../../shared/packet.js';
import { captureMetrics } from '../../shared/metrics.js';
import type { RedisClient } from '../../shared/redis.js';
import type { Config } from '../../shared/config.js';
import { logger } from '../../shared/log.js';

/** A packet as capture hands it over; the publisher adds the monitor id. */
export type OutgoingPacket = Omit<Packet, 'kind' | 'monitorId'>;

export type StatusRecord = {
  monitor_id: number;
  monitor_name: string;
  state: 'connecting' | 'connected' | 'failed' | 'stopped';
  fps: number;
  kbps: number;
  last_packet_time: number | null;
  capture_node: string;
  generation: number;
  packets: number;
  startup_time: number;
  updated: number;
};

/** Most packets allowed to wait for Redis before video is dropped. */
const MAX_IN_FLIGHT = 250;

const log = logger('publisher');

export class Publisher {
  readonly keys: MonitorKeys;
  private readonly redis;
  private readonly label: string;
  private inFlight = 0;
  private skippingToKeyframe = false;
  private readonly m = captureMetrics();

  constructor(
    redis: RedisClient,
    readonly monitorId: number,
    private readonly retention: Config['retention'],
  ) {
    this.redis = withScripts(redis);
    this.keys = monitorKeys(monitorId);
    this.label = String(monitorId);
  }

  async register(name: string): Promise<void> {
    await Promise.all([
      this.redis.sadd(MONITORS_KEY, String(this.monitorId)),
      this.redis.hset(MONITOR_NAMES_KEY, String(this.monitorId), name),
    ]);
  }

  /** Codec config goes to the meta hash (for new readers) and inline in the stream (for live ones), in that order. */
  publishConfig(config: CodecConfig): void {
    const json = JSON.stringify(configToJson(config));
    this.track(this.redis.hset(this.keys.meta, 'config', json));
    this.track(this.redis.xadd(this.keys.video, 'MAXLEN', '~', String(this.retention.maxEntries), '*', 'c', json));
  }

  publishPacket(p: OutgoingPacket): void {
    if (p.keyframe) this.skippingToKeyframe = false;
    if (this.skippingToKeyframe || this.inFlight >= MAX_IN_FLIGHT) {
      this.skippingToKeyframe = true;
      this.m.dropped.inc({ monitor: this.label });
      return;
    }
    const bytes = encodePacket({ ...p, monitorId: this.monitorId });
    const started = performance.now();
    this.inFlight++;
    this.m.inFlight.set({ monitor: this.label }, this.inFlight);
    // Only keyframes move the retention window, so only they need the script;
    // a plain XADD costs Redis about a quarter less CPU.
    const write = p.keyframe
      ? this.redis.zmPublish(this.keys.video, this.keys.keyframes, this.keys.meta, bytes, '1',
        this.retention.gops, this.retention.seconds * 1000, this.retention.maxEntries)
      : this.redis.xadd(this.keys.video, 'MAXLEN', '~', String(this.retention.maxEntries), '*', 'p', bytes);
    write
      .then(
        () => this.m.publishLatency.observe({ monitor: this.label }, (performance.now() - started) / 1000),
        (err) => this.failed(err),
      )
      .finally(() => {
        this.inFlight--;
        this.m.inFlight.set({ monitor: this.label }, this.inFlight);
      });
    this.m.packets.inc({ monitor: this.label });
    this.m.bytes.inc({ monitor: this.label }, p.data.length);
  }

  event(event: string, message: string, generation: number): void {
    this.m.events.inc({ monitor: this.label, event });
    const json = JSON.stringify({ event, message, time: Date.now(), generation });
    this.track(this.redis.xadd(this.keys.events, 'MAXLEN', '~', String(this.retention.events), '*', 'e', json));
  }

  status(record: StatusRecord, ttlMs: number): void {
    this.track(this.redis.set(this.keys.status, JSON.stringify(record), 'PX', ttlMs));
  }

  /** Resolves once every write sent so far has been answered. */
  async flush(): Promise<void> {
    while (this.inFlight > 0 || this.pending.size > 0) {
      await Promise.allSettled([...this.pending]);
      if (this.inFlight > 0) await new Promise((r) => setTimeout(r, 5));
    }
  }

  private readonly pending = new Set<Promise<unknown>>();

  private track(p: Promise<unknown>): void {
    const tracked = p.catch((err) => this.failed(err)).finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
  }

  private failed(err: unknown): void {
    this.m.publishErrors.inc({ monitor: this.label });
    log.warn('redis write failed', { monitor: this.monitorId, error: (err as Error).message });
  }
}
