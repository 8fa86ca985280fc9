/**
 * One monitor's video on one edge: the codec config, the packets since the
 * latest keyframe (so a new viewer starts decodable at once, with no Redis
 * round trip), and the local subscribers every packet is handed to.
 *
 * The channel also tells its viewers what they did not get, and keeps them
 * at the live edge: a gap in a generation's sequence (packets capture could
 * not publish) or a history Redis lost is reported as `dropped` and video
 * resumes at the next keyframe; a backlog that arrives late after a Redis
 * stall is skipped up to the first keyframe that is live again.
 */
import { configFromJson, type CodecConfig, type CodecConfigJson } from '../../shared/codec.js';
import type { MonitorKeys, Quality } from '../../shared/redis-keys.js';
import type { RedisClient } from '../../shared/redis.js';
import type { DropReason } from '../../shared/protocol.js';
import { edgeMetrics } from '../../shared/metrics.js';
import { logger } from '../../shared/log.js';
import { CachedPacket } from './cached-packet.js';
import type { Socket } from 'node:net';
import { beginFanout, endFanout, laneTarget, takeLane, type Target } from './fanout-batch.js';
import { countSent } from './video-subscription.js';
import type { StreamEntry, StreamFeed } from './stream-reader.js';

export interface VideoSubscriber {
  /** Called once the channel is live: the config (if known) and the current GOP, keyframe first. */
  begin(config: CodecConfig | null, epoch: string | null, gop: readonly CachedPacket[]): void;
  /** Called for every new packet, in stream order; returns the bytes written (0 when skipped). */
  deliver(packet: CachedPacket): number;
  /** Called when capture publishes a new codec config (new generation, or a new history). */
  codec(config: CodecConfig, epoch: string | null): void;
  /** Packets this subscriber will never get; what it gets next starts at a keyframe. */
  missed(count: number, reason: DropReason): void;
  /** While in step and written straight to its socket: that socket (the channel's fast lane may write to it). */
  laneSocket?(): Socket | null;
}

/** A subscriber the channel writes packets to itself, without calling it. */
interface Rider {
  sub: VideoSubscriber;
  target: Target;
}

/** Bounds on the in-memory GOP; past them a new viewer waits for the next keyframe. */
const GOP_MAX_PACKETS = 1500;
const GOP_MAX_BYTES = 64 * 1024 * 1024;
/** A packet this much later than the channel's usual delay is a backlog, not live video. */
export const STALE_AFTER_MS = 2000;
const START_RETRY_MAX_MS = 1000;

const log = logger('video-channel');

export class VideoChannel {
  readonly subscribers = new Set<VideoSubscriber>();
  /**
   * The fast lane: subscribers in step, each packet written to their sockets
   * in one loop with no call into them (measured 2026-11-30: the per-viewer
   * calls were the largest share of the edge's own CPU after the writes).
   * Rebuilt at every keyframe, which goes to everyone the usual way, and
   * emptied whenever viewers are told they missed packets; a rider whose
   * socket cannot take a packet at once leaves it and gets that packet the
   * usual way (which skips, queues or closes as the send budget says).
   */
  private riders: Rider[] = [];
  /** Subscribers not in the lane: called for every packet. */
  private readonly called = new Set<VideoSubscriber>();
  private readonly refused: Rider[] = [];
  private config: CodecConfig | null = null;
  private epoch: string | null = null;
  private gop: CachedPacket[] = [];
  private gopBytes = 0;
  private live = false;
  private stopped = false;
  private last: { generation: number; sequence: number } | null = null;
  /** The usual capture→read delay, clock skew included; follows a minimum, drifts up slowly. */
  private baseDelay: number | null = null;
  /** Packets skipped while catching up with a backlog. */
  private skippedStale = 0;
  /** The `monitor` label of its metrics: the id for the main stream, `ID:sub` for the sub-stream (as capture's). */
  readonly label: string;
  private readonly m = edgeMetrics();

  constructor(
    readonly monitorId: number,
    readonly keys: MonitorKeys,
    private readonly redis: RedisClient,
    private readonly reader: StreamFeed,
    readonly quality: Quality = 'main',
  ) {
    this.label = quality === 'main' ? String(monitorId) : `${monitorId}:sub`;
  }

  /** Loads the current GOP from Redis, then follows the stream live; retries until Redis answers. */
  async start(): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        await this.load();
        return;
      } catch (err) {
        if (attempt === 0) log.warn('cannot load the monitor\'s video yet; retrying', { monitor: this.monitorId, error: (err as Error).message });
        await new Promise((r) => setTimeout(r, Math.min(START_RETRY_MAX_MS, 50 * 2 ** attempt)));
      }
    }
  }

  stop(): void {
    this.stopped = true;
    this.reader.remove(this.keys.video);
    this.subscribers.clear();
    this.called.clear();
    this.riders = [];
    this.m.subscribers.remove(this.subscriberLabels);
  }

  add(sub: VideoSubscriber): void {
    this.subscribers.add(sub);
    this.called.add(sub);
    this.m.subscribers.set(this.subscriberLabels, this.subscribers.size);
    if (this.live) sub.begin(this.config, this.epoch, this.gop);
  }

  remove(sub: VideoSubscriber): void {
    this.subscribers.delete(sub);
    this.called.delete(sub);
    const i = this.riders.findIndex((r) => r.sub === sub);
    if (i >= 0) this.riders.splice(i, 1);
    this.m.subscribers.set(this.subscriberLabels, this.subscribers.size);
  }

  private get subscriberLabels(): { monitor: string; quality: Quality } {
    return { monitor: String(this.monitorId), quality: this.quality };
  }

  get codecConfig(): CodecConfig | null {
    return this.config;
  }

  /** The latest keyframe, for one-shot requests (which hold it past the GOP, so it is pinned); null before the first one. */
  latestKeyframe(): CachedPacket | null {
    const kf = this.gop[0] ?? null;
    kf?.pin();
    return kf;
  }

  private async load(): Promise<void> {
    const [configJson, kf, epoch] = await this.redis.hmget(this.keys.meta, 'config', 'kf', 'epoch');
    this.config = configJson ? configFromJson(JSON.parse(configJson) as CodecConfigJson) : null;
    this.epoch = epoch;
    this.forgetGop();
    let from = '0-0';
    if (kf) {
      const entries = (await this.redis.xrangeBuffer(this.keys.video, kf, '+')) as StreamEntry[];
      for (const e of entries) this.ingest(e, false);
      from = entries.length > 0 ? entries[entries.length - 1][0].toString() : kf;
    }
    if (this.stopped) return;
    this.live = true;
    this.reader.add(this.keys.video, from, { onEntries: (entries) => this.onEntries(entries), resume: (lastId) => this.resume(lastId) });
    for (const sub of this.subscribers) sub.begin(this.config, this.epoch, this.gop);
  }

  /** After the reader lost Redis: read on if the history is the one we followed, else from its start. */
  private async resume(lastId: string): Promise<string> {
    const epoch = await this.redis.hget(this.keys.meta, 'epoch');
    if (epoch !== null && epoch === this.epoch) return lastId;
    this.historyLost();
    this.epoch = epoch;
    return '0-0';
  }

  private historyLost(): void {
    if (this.epoch === null) return;
    log.warn('Redis lost this monitor\'s history; viewers restart at the next keyframe', { monitor: this.monitorId, epoch: this.epoch });
    this.forgetGop();
    this.last = null;
    this.tell(0, 'history_lost');
  }

  private onEntries(entries: StreamEntry[]): void {
    for (const e of entries) this.ingest(e, true);
  }

  private ingest([idBuf, fields]: StreamEntry, fanOut: boolean): void {
    const field = fields[0]?.toString();
    if (field === 'c') return this.ingestConfig(fields, fanOut);
    if (field !== 'p') return;
    let packet: CachedPacket;
    try {
      packet = new CachedPacket(idBuf.toString(), fields[1], this.config);
    } catch (err) {
      log.warn('skipping malformed packet', { monitor: this.monitorId, error: (err as Error).message });
      return;
    }
    const gap = this.gapBefore(packet);
    const kept = this.remember(packet);
    if (fanOut) this.fanOut(packet, gap);
    if (!kept) packet.release();
  }

  private fanOut(packet: CachedPacket, gap: number): void {
    const now = Date.now();
    const delay = now - packet.header.captureTime;
    this.m.packets.inc({ monitor: this.label });
    this.m.readerLag.set({ monitor: this.label }, delay / 1000);
    if (gap > 0) this.tell(gap, 'upstream');
    if (this.isStale(delay) || (this.skippedStale > 0 && !packet.keyframe)) {
      this.skippedStale++;
      return;
    }
    if (this.skippedStale > 0) {
      this.tell(this.skippedStale, 'stale');
      this.skippedStale = 0;
    }
    if (this.subscribers.size === 0) return;
    if (packet.keyframe) this.emptyLane();
    let writes = 0;
    let bytes = 0;
    beginFanout();
    try {
      if (this.riders.length > 0) {
        const frame = packet.zmcast();
        const taken = takeLane(this.riders, frame, this.refused);
        writes += taken;
        bytes += taken * frame.size;
        if (this.refused.length > 0) this.leaveLane();
      }
      for (const sub of this.called) {
        const n = sub.deliver(packet);
        if (n > 0) {
          writes++;
          bytes += n;
          this.seat(sub);
        }
      }
    } finally {
      endFanout();
    }
    if (writes > 0) countSent(this.m, writes, bytes);
    this.m.latency.observe({ monitor: this.label }, (Date.now() - packet.header.captureTime) / 1000);
  }

  /** Into the lane if the subscriber is in step now (it was just written a packet). */
  private seat(sub: VideoSubscriber): void {
    const socket = sub.laneSocket?.();
    // Nothing queued: a viewer that is behind stays called until it has caught up.
    const target = socket && socket.writableLength === 0 ? laneTarget(socket) : null;
    if (target === null) return;
    this.called.delete(sub);
    this.riders.push({ sub, target });
  }

  /** Riders the lane could not write to go back to being called (this packet included: the loop after runs them). */
  private leaveLane(): void {
    const out = new Set(this.refused);
    this.refused.length = 0;
    this.riders = this.riders.filter((r) => !out.has(r));
    for (const r of out) this.called.add(r.sub);
  }

  private emptyLane(): void {
    for (const r of this.riders) this.called.add(r.sub);
    this.riders = [];
  }

  private ingestConfig(fields: Buffer[], fanOut: boolean): void {
    this.config = configFromJson(JSON.parse(fields[1].toString()) as CodecConfigJson);
    const epoch = fields[2]?.toString() === 'e' ? fields[3].toString() : this.epoch;
    if (fanOut && epoch !== this.epoch) this.historyLost();
    this.epoch = epoch;
    if (fanOut) for (const sub of this.subscribers) sub.codec(this.config, this.epoch);
  }

  /** Packets of this generation that never reached Redis before this one. */
  private gapBefore(packet: CachedPacket): number {
    const { generation, sequence } = packet.header;
    const last = this.last;
    this.last = { generation, sequence };
    if (!last || last.generation !== generation || sequence <= last.sequence) return 0;
    return sequence - last.sequence - 1;
  }

  private isStale(delay: number): boolean {
    if (this.baseDelay === null || delay < this.baseDelay) this.baseDelay = delay;
    else this.baseDelay += (delay - this.baseDelay) * 0.001;
    return delay - this.baseDelay > STALE_AFTER_MS;
  }

  private tell(count: number, reason: DropReason): void {
    if (reason !== 'slow_consumer') this.m.upstreamDrops.inc({ monitor: this.label, reason }, Math.max(1, count));
    this.emptyLane(); // told they missed packets, they wait for a keyframe
    for (const sub of this.subscribers) sub.missed(count, reason);
  }

  /** Into the GOP if it belongs there; false when it does not, and the caller releases it once written. */
  private remember(packet: CachedPacket): boolean {
    if (packet.keyframe) {
      this.forgetGop();
      this.gop = [packet];
      this.gopBytes = packet.raw.length;
      return true;
    }
    if (this.gop.length === 0) return false;
    if (this.gop.length >= GOP_MAX_PACKETS || this.gopBytes + packet.raw.length > GOP_MAX_BYTES) {
      this.forgetGop();
      return false;
    }
    this.gop.push(packet);
    this.gopBytes += packet.raw.length;
    return true;
  }

  /** Drops the GOP; its packets' memory goes back for reuse (what a socket or a one-shot may still hold was pinned). */
  private forgetGop(): void {
    for (const packet of this.gop) packet.release();
    this.gop = [];
    this.gopBytes = 0;
  }
}
