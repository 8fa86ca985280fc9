/**
 * A warm decoder for one stream of a monitor (main or sub): reads the stream from its
 * newest keyframe on and keeps decoding as packets arrive, so a picture of
 * the current moment costs one scale + encode. In keyframe mode it decodes
 * keyframes only (a fraction of the cost, no reference chain): enough for
 * picture rates at or below the camera's keyframe rate.
 */
import { configFromJson, type CodecConfig, type CodecConfigJson } from '../../shared/codec.js';
import { logger } from '../../shared/log.js';
import { workerMetrics } from '../../shared/metrics.js';
import { decodeHeader, packetPayload } from '../../shared/packet.js';
import { PictureError } from '../../shared/pictures/picture-spec.js';
import { monitorKeys, type Quality } from '../../shared/redis-keys.js';
import type { RedisClient } from '../../shared/redis.js';
import { FrameDecoder, type DecodedFrame } from './frame-decoder.js';

export type FeedMode = 'keyframe' | 'full';
type Entry = [id: Buffer, fields: Buffer[]];

const BLOCK_MS = 1000;
/** How often keyframe mode looks for a new keyframe: a delay far below any keyframe interval. */
const KEYFRAME_POLL_MS = 100;
const log = logger('monitor-feed');

interface Waiter {
  id: string;
  resolve: (frame: DecodedFrame) => void;
  reject: (err: Error) => void;
}

export class MonitorFeed {
  private decoder: FrameDecoder | null = null;
  private lastId = '0-0';
  /** Stream id of the packet the newest frame came from. */
  private frameId = '0-0';
  private stopped = false;
  private readonly loop: Promise<void>;
  private waiters: Waiter[] = [];
  private readonly m = workerMetrics();
  private failure: PictureError | null = null;
  /** Keyframe mode: the stream id of the last keyframe read. */
  private lastKeyframe: string | null = null;
  private reader: RedisClient | null = null;

  constructor(
    private readonly redis: RedisClient,
    /** Makes a connection of the feed's own to block on (full mode only: keyframe mode polls on `redis`). */
    private readonly connect: () => RedisClient,
    readonly monitorId: number,
    readonly quality: Quality,
    readonly mode: FeedMode,
  ) {
    this.m.warmDecoders.inc({ mode, quality });
    this.loop = this.run();
  }

  /** Which packet the newest decoded frame came from, if any. */
  get latestInfo(): Omit<DecodedFrame, 'frame'> | null {
    return this.decoder?.latestInfo ?? null;
  }

  /** The newest decoded frame, if any; the caller frees it. */
  takeLatest(): DecodedFrame | null {
    return this.decoder?.takeLatest() ?? null;
  }

  /**
   * Resolves with a frame of the packet `id` or newer (the caller frees it);
   * PictureError('camera_down') if none comes within timeoutMs.
   */
  frameFrom(id: string, timeoutMs: number): Promise<DecodedFrame> {
    const latest = compareIds(this.frameId, id) >= 0 ? this.takeLatest() : null;
    if (latest) return Promise.resolve(latest);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { id, resolve, reject };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new PictureError('camera_down', `no decodable frame of monitor ${this.monitorId} (${this.quality}) within ${timeoutMs} ms`));
      }, timeoutMs);
      waiter.resolve = (f) => { clearTimeout(timer); resolve(f); };
      waiter.reject = (e) => { clearTimeout(timer); reject(e); };
      this.waiters.push(waiter);
    });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.reader?.disconnect();
    await this.loop;
    this.decoder?.close();
    this.decoder = null;
    this.m.warmDecoders.dec({ mode: this.mode, quality: this.quality });
    for (const w of this.waiters.splice(0)) w.reject(new PictureError('overloaded', 'the decoder stopped'));
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        if (this.mode === 'keyframe') {
          await this.nextKeyframe();
          continue;
        }
        if (this.lastId === '0-0') await this.startAtKeyframe();
        this.reader ??= this.connect();
        const reply = (await this.reader.xreadBuffer('COUNT', 100, 'BLOCK', BLOCK_MS, 'STREAMS', monitorKeys(this.monitorId, this.quality).video, this.lastId)) as
          | [Buffer, Entry[]][]
          | null;
        if (reply) await this.consume(reply[0][1]);
        failures = 0;
      } catch (err) {
        if (this.stopped) return;
        if (err instanceof PictureError) this.fail(err);
        else if (failures++ === 0) log.warn('reading the monitor stream fails; retrying', { monitor: this.monitorId, quality: this.quality, error: (err as Error).message });
        await new Promise((r) => setTimeout(r, Math.min(500, 25 * 2 ** failures)));
      }
    }
  }

  /**
   * Keyframe mode reads keyframes only, found by the id capture keeps in the
   * monitor's meta: the packets in between never leave Redis.
   */
  private async nextKeyframe(): Promise<void> {
    const k = monitorKeys(this.monitorId, this.quality);
    const [config, kf] = (await this.redis.hmget(k.meta, 'config', 'kf')) as [string | null, string | null];
    if (!config || !kf || kf === this.lastKeyframe) {
      await new Promise((r) => setTimeout(r, KEYFRAME_POLL_MS));
      return;
    }
    this.lastKeyframe = kf;
    const codec = configFromJson(JSON.parse(config) as CodecConfigJson);
    if (!this.decoder || this.decoder.config.generation !== codec.generation) await this.openDecoder(codec);
    await this.consume((await this.redis.xrangeBuffer(k.video, kf, kf)) as Entry[]);
  }

  /** From the newest keyframe (with its codec config) through the newest packet. */
  private async startAtKeyframe(): Promise<void> {
    const k = monitorKeys(this.monitorId, this.quality);
    const [config, kf] = (await this.redis.hmget(k.meta, 'config', 'kf')) as [string | null, string | null];
    if (!config || !kf) {
      // Nothing to decode yet: wait for the stream's first entries.
      this.lastId = '$';
      return;
    }
    await this.openDecoder(configFromJson(JSON.parse(config) as CodecConfigJson));
    const entries = (await this.redis.xrangeBuffer(k.video, kf, '+')) as Entry[];
    // A GOP newer than our `kf` read may already have replaced it; then read on from the stream's end.
    if (entries.length === 0) {
      this.lastId = '$';
      return;
    }
    await this.consume(entries);
  }

  private async consume(entries: Entry[]): Promise<void> {
    for (const [idBuf, fields] of entries) {
      if (this.stopped) return;
      const id = idBuf.toString();
      this.lastId = id;
      const field = fields[0]?.toString();
      if (field === 'c') {
        const config = configFromJson(JSON.parse(fields[1].toString()) as CodecConfigJson);
        if (!this.decoder || this.decoder.config.generation !== config.generation) await this.openDecoder(config);
        continue;
      }
      if (field !== 'p') continue;
      if (!this.decoder) {
        // Joined without a codec config (the stream was empty): start over at the next keyframe.
        if (this.failure) continue;
        this.lastId = '0-0';
        return;
      }
      const buf = fields[1];
      const h = decodeHeader(buf);
      if (this.mode === 'keyframe' && !h.keyframe) continue;
      const started = performance.now();
      const produced = await this.decoder.decode(packetPayload(buf), { generation: h.generation, sequence: h.sequence, captureTime: h.captureTime }, h.keyframe);
      this.m.decodeSeconds.observe({ codec: this.decoder.config.codec, mode: this.mode, quality: this.quality }, (performance.now() - started) / 1000);
      this.m.decodedFrames.inc({ mode: this.mode, quality: this.quality });
      if (produced) {
        this.frameId = id;
        this.failure = null;
        this.wake();
      }
    }
  }

  private async openDecoder(config: CodecConfig): Promise<void> {
    this.decoder?.close();
    this.decoder = null;
    // Keyframes are decoded without the deblocking filter: no later frame refers to them here.
    this.decoder = await FrameDecoder.open(config, { skipLoopFilter: this.mode === 'keyframe' });
  }

  private wake(): void {
    const ready = this.waiters.filter((w) => compareIds(this.frameId, w.id) >= 0);
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((w) => !ready.includes(w));
    for (const w of ready) {
      const frame = this.takeLatest();
      if (frame) w.resolve(frame);
      else w.reject(new Error('out of memory for a frame reference'));
    }
  }

  /** An error no retry fixes (no decoder for the codec): waiters hear it now, and the feed stays idle. */
  private fail(err: PictureError): void {
    this.failure = err;
    for (const w of this.waiters.splice(0)) w.reject(err);
    this.lastId = '$';
    this.decoder?.close();
    this.decoder = null;
  }
}

/** Orders two stream ids ("ms-seq"). */
export function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-');
  const [bm, bs] = b.split('-');
  return Number(am) - Number(bm) || Number(as ?? 0) - Number(bs ?? 0);
}
