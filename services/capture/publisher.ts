/**
 * Writes one monitor's packets, codec config, events and status to Redis, as
 * the holder of the monitor's lease: every write goes through a script that
 * checks the lease's fencing token, so a capture that lost its lease cannot
 * write. Nothing here is awaited on the capture path: commands are pipelined
 * and their replies counted when they come back.
 *
 * When Redis cannot take a packet (slow, away, full, or it lost the
 * monitor's history) video is dropped until the next keyframe, counted by
 * reason, rather than queued without bound or published with a hole in a GOP.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { monitorKeys, pushChannel, MONITORS_KEY, MONITOR_NAMES_KEY, SUB_STREAMS_KEY, type MonitorKeys, type Quality } from '../../shared/redis-keys.js';
import { scriptErrorCode, withScripts } from '../../shared/redis-scripts.js';
import { configToJson, type CodecConfig } from '../../shared/codec.js';
import { encodePacket, type Packet } from '../../shared/packet.js';
import { captureMetrics } from '../../shared/metrics.js';
import { databaseOf, type RedisClient } from '../../shared/redis.js';
import type { Config } from '../../shared/config.js';
import { logger } from '../../shared/log.js';

/** A packet as capture hands it over; the publisher adds the monitor id and the sub flag. */
export type OutgoingPacket = Omit<Packet, 'kind' | 'monitorId'>;

/** What the publisher can say about its writes, for the status record. */
export type PublishState = 'ok' | 'backlog' | 'redis_full' | 'redis_error' | 'fenced';

/** Why a packet was not published (the label of zmcast_capture_dropped_packets_total). */
type DropReason = 'backlog' | 'redis_full' | 'redis_error' | 'no_keyframe';

/** The lease this publisher writes under (see monitor-lease.ts). */
export interface WriteLease {
  readonly token: string;
  readonly ttlMs: number;
}

/** Most packets allowed to wait for Redis before video is dropped. */
const MAX_IN_FLIGHT = 250;
/** Events kept waiting while Redis is away; past this the oldest wait is not worth more memory. */
const MAX_PENDING = 1000;

const log = logger('publisher');
/** Streams (metric labels) whose last write was refused for lack of memory, for the process-wide gauge. */
const full = new Set<string>();

export class Publisher {
  readonly keys: MonitorKeys;
  /** Epochs this publisher may start: a random base and a counter, new for every write. */
  private readonly epochBase = randomBytes(5).toString('hex');
  private epochCount = 0;
  private readonly redis;
  private readonly label: string;
  /** Where each entry is pushed to the edges following this stream live. */
  private readonly channel: string;
  private readonly m = captureMetrics();
  private inFlight = 0;
  private skippingToKeyframe = false;
  private skipReason: DropReason = 'backlog';
  private configJson = '';
  private fullUntil = 0;
  private lastError: string | null = null;
  private isFenced = false;
  private statusPending = false;
  private accepted = { packets: 0, bytes: 0 };
  private readonly pending = new Set<Promise<unknown>>();

  constructor(
    redis: RedisClient,
    readonly monitorId: number,
    private readonly retention: Config['retention'],
    private readonly lease: WriteLease,
    /** Called once when Redis says another process holds the lease. */
    private readonly onFenced: (holder: string) => void = () => {},
    /** Which of the monitor's streams this publisher writes: its own keys, and the header's sub flag. */
    readonly quality: Quality = 'main',
  ) {
    this.redis = withScripts(redis);
    this.keys = monitorKeys(monitorId, quality);
    this.label = streamLabel(monitorId, quality);
    this.channel = pushChannel(this.keys.video, databaseOf(redis));
  }

  /** Puts the monitor (and its sub-stream) in the registry edges read; repeated by capture so a Redis restart heals. */
  async register(name: string): Promise<void> {
    await Promise.all([
      this.redis.sadd(MONITORS_KEY, String(this.monitorId)),
      this.redis.hset(MONITOR_NAMES_KEY, String(this.monitorId), name),
      this.quality === 'sub' ? this.redis.sadd(SUB_STREAMS_KEY, String(this.monitorId)) : undefined,
    ]);
  }

  /** register() without waiting, for the periodic re-assertion. */
  reassert(name: string): void {
    if (this.pending.size < MAX_PENDING) this.track(this.register(name));
  }

  /**
   * The codec config of the generation that starts now. Written at once (for
   * readers), and carried by every keyframe so a Redis that lost it gets it
   * back before the keyframe that needs it.
   */
  publishConfig(config: CodecConfig): void {
    this.configJson = JSON.stringify(configToJson(config));
    this.track(this.write(Buffer.alloc(0), false));
  }

  publishPacket(p: OutgoingPacket): void {
    if (this.isFenced) return;
    if (p.keyframe) this.skippingToKeyframe = false;
    if (this.inFlight >= MAX_IN_FLIGHT) this.skipTo('backlog');
    if (this.skippingToKeyframe) {
      this.m.dropped.inc({ monitor: this.label, reason: this.skipReason });
      return;
    }
    const bytes = encodePacket({ ...p, monitorId: this.monitorId, sub: this.quality === 'sub' });
    const started = performance.now();
    this.inFlight++;
    this.m.inFlight.set({ monitor: this.label }, this.inFlight);
    this.write(bytes, p.keyframe)
      .then(
        () => {
          this.accepted.packets++;
          this.accepted.bytes += p.data.length;
          this.m.publishLatency.observe({ monitor: this.label }, (performance.now() - started) / 1000);
          if (p.keyframe) this.recovered();
        },
        (err) => this.refused(err),
      )
      .finally(() => {
        this.inFlight--;
        this.m.inFlight.set({ monitor: this.label }, this.inFlight);
      });
    this.m.packets.inc({ monitor: this.label });
    this.m.bytes.inc({ monitor: this.label }, p.data.length);
  }

  event(event: string, message: string, generation: number): void {
    if (this.isFenced) return;
    this.m.events.inc({ monitor: this.label, event });
    if (this.pending.size >= MAX_PENDING) return; // Redis has been away long: the status says so
    const json = JSON.stringify({ event, message, time: Date.now(), generation });
    this.track(this.redis.zmEvent(this.keys.events, this.keys.meta, this.keys.lease,
      json, this.lease.token, this.nextEpoch(), this.retention.events));
  }

  /** One status write at a time: while Redis is away they would only pile up. */
  status(record: object, ttlMs: number): void {
    if (this.isFenced || this.statusPending) return;
    this.statusPending = true;
    this.track(this.redis.zmStatus(this.keys.status, this.keys.lease, JSON.stringify(record), this.lease.token, ttlMs)
      .finally(() => (this.statusPending = false)));
  }

  /** Packets and payload bytes Redis accepted since the last call (what viewers can get). */
  takeAccepted(): { packets: number; bytes: number } {
    const a = this.accepted;
    this.accepted = { packets: 0, bytes: 0 };
    return a;
  }

  /** How writes are going, for the status record. `redis_full` lasts as long as retention is cut. */
  publishState(): PublishState {
    if (this.fullUntil > 0 && Date.now() >= this.fullUntil) this.notFull();
    if (this.isFenced) return 'fenced';
    if (this.lastError === 'OOM' || this.fullUntil > 0) return 'redis_full';
    if (this.lastError !== null) return 'redis_error';
    if (this.skippingToKeyframe && this.skipReason === 'backlog') return 'backlog';
    return 'ok';
  }

  get fenced(): boolean {
    return this.isFenced;
  }

  /** Resolves once every write sent so far has been answered, or after `timeoutMs` (Redis may be away). */
  async flush(timeoutMs = 2000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    // Polled: packet writes are counted, not kept, and a timer lets their replies in.
    while ((this.inFlight > 0 || this.pending.size > 0) && Date.now() < deadline) await sleep(5);
  }

  private write(bytes: Buffer, keyframe: boolean): Promise<string> {
    // One GOP per monitor while Redis is short of memory; the full window again after the hold.
    if (this.fullUntil > 0 && Date.now() >= this.fullUntil) this.notFull();
    const gops = this.fullUntil > 0 ? 1 : this.retention.gops;
    return this.redis.zmPublish(this.keys.video, this.keys.keyframes, this.keys.meta, this.keys.lease,
      bytes, keyframe ? '1' : '0', this.lease.token, this.lease.ttlMs, this.nextEpoch(),
      keyframe || bytes.length === 0 ? this.configJson : '', gops, this.retention.seconds * 1000, this.retention.maxEntries, this.channel);
  }

  /** Starts this monitor's history in Redis if Redis has none (new, or lost in a restart): never the same twice. */
  private nextEpoch(): string {
    return this.epochBase + (this.epochCount++ % 0xffffff).toString(16).padStart(6, '0');
  }

  private skipTo(reason: DropReason): void {
    if (!this.skippingToKeyframe || reason !== 'backlog') this.skipReason = reason;
    this.skippingToKeyframe = true;
  }

  private track(p: Promise<unknown>): void {
    const tracked = p.catch((err) => this.refused(err)).finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
  }

  private refused(err: unknown): void {
    const code = scriptErrorCode(err);
    this.m.publishErrors.inc({ monitor: this.label, code });
    if (code === 'FENCED') {
      this.m.fencedWrites.inc({ monitor: this.label });
      return this.fence((err as Error).message.slice('FENCED '.length));
    }
    if (code === 'NOKEYFRAME') return this.skipTo('no_keyframe');
    if (code === 'OOM') {
      this.skipTo('redis_full');
      this.fullUntil = Date.now() + this.retention.fullHoldSeconds * 1000;
      full.add(this.label);
      this.m.redisFull.set(1);
      // Retention normally moves only inside the publish script, which a full Redis refuses.
      if (this.lastError !== 'OOM') this.track(this.redis.zmTrim(this.keys.video, this.keys.keyframes, this.keys.meta, 1));
    } else {
      this.skipTo('redis_error');
    }
    if (this.lastError !== code) {
      log.warn('redis refused writes; dropping video until the next keyframe it takes', { monitor: this.monitorId, quality: this.quality, code, error: (err as Error).message });
    }
    this.lastError = code;
  }

  private recovered(): void {
    if (this.lastError === null) return;
    log.info('redis takes writes again', { monitor: this.monitorId, after: this.lastError });
    this.lastError = null;
  }

  /** The hold after a full Redis is over: back to the configured retention. */
  private notFull(): void {
    this.fullUntil = 0;
    full.delete(this.label);
    this.m.redisFull.set(full.size > 0 ? 1 : 0);
  }

  private fence(holder: string): void {
    if (this.isFenced) return;
    this.isFenced = true;
    log.warn('another capture holds this monitor\'s lease; this one stops writing', { monitor: this.monitorId, holder });
    this.onFenced(holder);
  }
}

/** The `monitor` label of capture metrics: the id for the main stream, `ID:sub` for the sub-stream. */
export function streamLabel(monitorId: number, quality: Quality): string {
  return quality === 'main' ? String(monitorId) : `${monitorId}:sub`;
}
