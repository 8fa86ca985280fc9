/**
 * Owns one monitor's camera connection: opens the source, publishes its codec
 * config and then every packet to Redis, reconnects with backoff, and reports
 * what happens as events and a status record. Packets are never decoded here,
 * and nothing on this path waits for Redis.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { codecString, configFromJson, type CodecConfig, type CodecConfigJson } from '../../shared/codec.js';
import type { Config } from '../../shared/config.js';
import { logger } from '../../shared/log.js';
import { captureMetrics } from '../../shared/metrics.js';
import type { RedisClient } from '../../shared/redis.js';
import type { Quality } from '../../shared/redis-keys.js';
import { Backoff } from './backoff.js';
import { Publisher, streamLabel } from './publisher.js';
import type { MonitorLease } from './monitor-lease.js';
import { createSource, type CaptureSpec, type SourceInfo, type VideoSource } from './source.js';
import { StatusReporter } from './status-reporter.js';

/** ZoneMinder's monitor event names, plus connecting/connected/codec_changed. */
export type CaptureEvent =
  | 'connecting'
  | 'connected'
  | 'connection_failed'
  | 'connection_restored'
  | 'capture_failed'
  | 'capture_resumed'
  | 'codec_changed'
  | 'capture_failover';

const log = logger('capture');

/**
 * One stream of a monitor: its main stream, or its sub-stream (quality
 * `sub`, from `secondSource`). A monitor with both runs two of these under
 * its one lease; each has its own source, backoff, generation and Redis
 * keys, so one failing never stops the other. Events of both go to the
 * monitor's one events stream, the sub-stream's marked in their message.
 */
export class MonitorCapture {
  private readonly publisher: Publisher;
  private readonly status: StatusReporter;
  private readonly backoff: Backoff;
  private readonly m = captureMetrics();
  private readonly label: string;
  private readonly stopping = new AbortController();
  private source: VideoSource | null;
  private running: Promise<void> | null = null;
  /** Bumped on every connection, so it also covers a codec change (only a new connection can bring one). */
  private generation = 0;
  private lastConfig: CodecConfig | null = null;
  /** Set by capture_failed / connection_failed until packets flow again; the next connect is a restore. */
  private failed = false;
  /** In an outage that already emitted connection_failed. */
  private outage = false;
  /** `connecting` is said once at start and once after each capture failure, not on every retry. */
  private announce = true;

  constructor(
    private readonly redis: RedisClient,
    readonly spec: CaptureSpec,
    private readonly config: Config,
    private readonly lease: MonitorLease,
    /** Redis refused a write because another process holds the lease: this capture has stopped. */
    private readonly onFenced: (monitorId: number) => void = () => {},
    readonly quality: Quality = 'main',
  ) {
    this.publisher = new Publisher(redis, spec.id, config.retention, lease, () => this.fenced(), quality);
    this.status = new StatusReporter(this.publisher, spec, config.capture);
    this.backoff = new Backoff(config.capture.reconnectMinMs, config.capture.reconnectMaxMs);
    this.label = streamLabel(spec.id, quality);
    // Made here so a source that can never work (a bad synthetic: query) fails at start.
    this.source = this.newSource();
  }

  async start(): Promise<void> {
    if (this.running) return;
    await this.publisher.register(this.spec.name);
    // Generations continue across capture restarts: a client that kept a decoder must see a new one.
    const stored = await this.redis.hget(this.publisher.keys.meta, 'config');
    this.lastConfig = stored ? configFromJson(JSON.parse(stored) as CodecConfigJson) : null;
    this.generation = this.lastConfig?.generation ?? 0;
    if (this.stopped) return;
    if (this.lease.previousOwner !== '' && this.quality === 'main') {
      this.m.failovers.inc({ monitor: this.label });
      this.emit('capture_failover', `capture moved here from ${this.lease.previousOwner}, which stopped renewing its lease`);
      log.warn('took over a monitor from a capture process that stopped renewing its lease', { monitor: this.spec.id, from: this.lease.previousOwner });
    }
    this.status.start();
    this.running = this.run();
  }

  /** Ends the loop (closing the camera), flushes Redis writes (bounded: Redis may be away) and leaves the status 'stopped'. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.source?.close();
    await this.running;
    this.m.connected.set({ monitor: this.label }, 0);
    this.status.stop('stopped');
    await this.publisher.flush();
  }

  /** Another process writes this monitor now: stop the camera, write nothing more. */
  private fenced(): void {
    this.stopping.abort();
    this.status.stop('stopped');
    this.m.connected.set({ monitor: this.label }, 0);
    // oxlint-disable-next-line typescript/no-floating-promises -- closeSource() catches and logs its own failure
    if (this.source) void this.closeSource(this.source);
    this.onFenced(this.spec.id);
  }

  private get stopped(): boolean {
    return this.stopping.signal.aborted;
  }

  private async run(): Promise<void> {
    let attempts = 0;
    while (!this.stopped) {
      if (attempts++ > 0) this.m.reconnects.inc({ monitor: this.label });
      if (this.announce) this.emit('connecting', `connecting to monitor ${this.spec.id}${this.quality === 'sub' ? '\'s sub-stream' : ''}`);
      this.announce = false;
      const source = (this.source ??= this.newSource());
      let info: SourceInfo;
      try {
        info = await source.open();
      } catch (err) {
        await this.closeSource(source);
        if (this.stopped) return;
        this.openFailed(err as Error);
        await this.pause();
        continue;
      }
      this.connected(info);
      let reason = 'end of stream';
      try {
        await this.pump(source);
      } catch (err) {
        reason = (err as Error).message;
      }
      await this.closeSource(source);
      if (this.stopped) return;
      this.captureFailed(reason);
      await this.pause();
    }
  }

  /** The hot path: one publish per packet, no awaits besides the source's own. */
  private async pump(source: VideoSource): Promise<void> {
    const generation = this.generation;
    let sequence = 0;
    for await (const p of source.packets()) {
      // A decoder can only start at a keyframe; what comes before it is of no use to anyone.
      if (sequence === 0 && !p.keyframe) continue;
      const captureTime = Date.now();
      if (sequence === 0) this.flowing();
      this.publisher.publishPacket({
        data: p.data,
        keyframe: p.keyframe,
        generation,
        sequence: sequence++,
        captureTime,
        pts: p.ptsUs,
        dts: p.dtsUs,
        duration: p.durationUs,
      });
      this.status.packet(captureTime);
    }
  }

  private connected(info: SourceInfo): void {
    this.generation++;
    const config: CodecConfig = {
      codec: info.codec,
      codecString: codecString(info.codec, info.extradata, { profile: info.profile, level: info.level }),
      width: info.width,
      height: info.height,
      extradata: info.extradata,
      generation: this.generation,
    };
    const previous = this.lastConfig;
    if (previous && !sameFormat(previous, config)) {
      this.emit('codec_changed', `${describe(previous)} → ${describe(config)}`);
    }
    // Before any packet of the generation: readers initialise decoders from it.
    this.publisher.publishConfig(config);
    this.lastConfig = config;
    this.emit(this.failed ? 'connection_restored' : 'connected', describe(config));
    this.outage = false;
    this.status.set('connected', this.generation, { width: config.width, height: config.height });
    this.m.connected.set({ monitor: this.label }, 1);
    this.m.generation.set({ monitor: this.label }, this.generation);
    log.info('connected', { monitor: this.spec.id, quality: this.quality, generation: this.generation, format: describe(config) });
  }

  /** The first keyframe of a connection. */
  private flowing(): void {
    this.backoff.reset();
    if (this.failed) this.emit('capture_resumed', 'packets are flowing again');
    this.failed = false;
  }

  private openFailed(err: Error): void {
    this.failed = true;
    if (!this.outage) {
      this.outage = true;
      this.emit('connection_failed', `cannot open source: ${err.message}`);
      this.status.set('failed', this.generation);
      log.warn('connection failed', { monitor: this.spec.id, quality: this.quality, error: err.message });
    }
  }

  private captureFailed(reason: string): void {
    this.failed = true;
    this.announce = true;
    this.emit('capture_failed', reason);
    this.status.set('failed', this.generation);
    this.m.connected.set({ monitor: this.label }, 0);
    log.warn('capture failed', { monitor: this.spec.id, quality: this.quality, reason });
  }

  private async closeSource(source: VideoSource): Promise<void> {
    this.source = null;
    await source.close().catch((err) => log.warn('closing the source failed', { monitor: this.spec.id, error: (err as Error).message }));
  }

  private async pause(): Promise<void> {
    await sleep(this.backoff.next(), undefined, { signal: this.stopping.signal }).catch(() => undefined);
  }

  private emit(event: CaptureEvent, message: string): void {
    this.publisher.event(event, this.quality === 'main' ? message : `sub-stream: ${message}`, this.generation);
  }

  private newSource(): VideoSource {
    return createSource(streamSpec(this.spec, this.quality), { rtspTimeoutMs: this.config.capture.rtspTimeoutMs });
  }
}

function sameFormat(a: CodecConfig, b: CodecConfig): boolean {
  return a.codec === b.codec && a.width === b.width && a.height === b.height && a.extradata.equals(b.extradata);
}

function describe(c: CodecConfig): string {
  return `${c.codecString} ${c.width}x${c.height}`;
}

/** The spec of one of the monitor's streams: the sub-stream is the same camera read from `secondSource`. */
export function streamSpec(spec: CaptureSpec, quality: Quality): CaptureSpec {
  if (quality === 'main') return spec;
  if (!spec.secondSource) throw new Error(`monitor ${spec.id} has no second source`);
  return { ...spec, source: spec.secondSource };
}
