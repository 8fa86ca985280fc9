/**
 * Browser decoding glue for one monitor: WebCodecs `VideoDecoder` fed from a
 * LiveClient's `codec` and `packet` events, drawn on a canvas.
 *
 * - Every `codec` (a new generation, epoch or quality, or a resubscribe)
 *   gets a fresh decoder that starts at the next keyframe. The canvas keeps the
 *   last picture until the new stream's first frame is drawn, and is resized
 *   only in the same task that draws it: switching quality shows no blank frame.
 * - It stays at the live edge: at most one decoded frame waits for the screen
 *   (an older one is dropped, counted `replaced`), and when the decoder falls
 *   behind by more than `maxQueue` chunks the rest of the GOP is skipped and
 *   the next keyframe starts a flushed decoder. Delay never grows. The first
 *   GOP after a subscribe (the edge's replay from the latest keyframe, in one
 *   burst) is exempt: it is how the picture catches up to the live edge.
 * - A codec this browser cannot decode (`isConfigSupported` false, e.g.
 *   H.265 in many Chromium builds, or no WebCodecs at all) is reported once
 *   through `onUnsupported` so the caller can fall back (the other quality,
 *   or JPEG pictures: `LiveClient.subscribePictures` and `PictureView`).
 */
import type { StreamCodec, VideoPacket, Quality } from './live-client.js';

export interface FrameInfo {
  width: number;
  height: number;
  quality: Quality;
  /** Capture → on screen, ms (capture and viewer clocks are assumed in step). */
  latencyMs: number;
}

export interface DecoderStats {
  /** Frames the decoder produced. */
  decoded: number;
  /** Frames drawn on the canvas. */
  drawn: number;
  /** Parts of GOPs skipped because the decoder fell behind the live edge. */
  late: number;
  /** Decoded frames never drawn because a newer one was ready first (catching up after a subscribe, a slow screen). */
  replaced: number;
  /** Decoders configured (one per codec message that could be decoded). */
  configurations: number;
  errors: number;
}

export interface LiveDecoderOptions {
  canvas: HTMLCanvasElement;
  onFrame?: (info: FrameInfo) => void;
  /** The codec cannot be decoded here; packets are ignored until the next decodable `codec`. */
  onUnsupported?: (codec: StreamCodec, reason: string) => void;
  onError?: (message: string) => void;
  /** Chunks waiting in the decoder beyond which the rest of the GOP is skipped (default 4). */
  maxQueue?: number;
}

type Phase = 'idle' | 'checking' | 'decoding' | 'unsupported';

const CODEC_NAMES: Record<string, string> = { h264: 'H.264', h265: 'H.265', av1: 'AV1' };

/** Support answers per codec string, shared by every tile: asked once per page. */
const supported = new Map<string, Promise<boolean>>();

function isSupported(config: VideoDecoderConfig): Promise<boolean> {
  if (typeof VideoDecoder === 'undefined') return Promise.resolve(false);
  let answer = supported.get(config.codec);
  if (!answer) {
    answer = VideoDecoder.isConfigSupported(config).then((s) => s.supported === true, () => false);
    supported.set(config.codec, answer);
  }
  return answer;
}

export class LiveDecoder {
  readonly stats: DecoderStats = { decoded: 0, drawn: 0, late: 0, replaced: 0, configurations: 0, errors: 0 };
  private readonly ctx: CanvasRenderingContext2D;
  private readonly maxQueue: number;
  private decoder: VideoDecoder | null = null;
  private config: VideoDecoderConfig | null = null;
  private codec: StreamCodec | null = null;
  private phase: Phase = 'idle';
  /** Packets that arrived while support was being checked, from the last keyframe on. */
  private held: VideoPacket[] = [];
  private extradata: Uint8Array = new Uint8Array(0);
  private keyframeDue = true;
  /** Keyframes fed to this decoder: the first GOP is the edge's replay, decoded as fast as it comes. */
  private keyframesFed = 0;
  private waiting: VideoFrame | null = null;
  private drawScheduled = false;
  /** Bumped on every codec: answers and frames of an older one are ignored. */
  private epoch = 0;

  constructor(private readonly opts: LiveDecoderOptions) {
    const ctx = opts.canvas.getContext('2d');
    if (!ctx) throw new Error('no 2d context on this canvas');
    this.ctx = ctx;
    this.maxQueue = opts.maxQueue ?? 4;
  }

  get quality(): Quality | null {
    return this.codec?.quality ?? null;
  }

  configure(codec: StreamCodec): void {
    const epoch = ++this.epoch;
    this.closeDecoder();
    this.codec = codec;
    this.extradata = fromBase64(codec.extradata);
    this.keyframeDue = true;
    this.held = [];
    // Annex-B in, no description: the parameter sets go in-band before the first keyframe.
    this.config = { codec: codec.codec_string, codedWidth: codec.width, codedHeight: codec.height, optimizeForLatency: true };
    this.phase = 'checking';
    isSupported(this.config).then((ok) => {
      if (epoch !== this.epoch) return;
      if (!ok) {
        this.phase = 'unsupported';
        this.held = [];
        this.opts.onUnsupported?.(codec, typeof VideoDecoder === 'undefined'
          ? 'this browser has no WebCodecs (it needs a secure context: https or localhost)'
          : `${CODEC_NAMES[codec.codec] ?? codec.codec} (${codec.codec_string}) cannot be decoded by this browser`);
        return;
      }
      this.start(epoch);
      const held = this.held;
      this.held = [];
      for (const p of held) this.push(p);
    }, (err: unknown) => this.opts.onError?.(String(err)));
  }

  push(p: VideoPacket): void {
    if (this.phase === 'checking') {
      if (p.header.keyframe) this.held = [p];
      else if (this.held.length > 0 && this.held.length < 300) this.held.push(p);
      return;
    }
    const decoder = this.decoder;
    if (this.phase !== 'decoding' || !decoder || decoder.state !== 'configured') return;
    // The GOP replayed at subscribe arrives in one burst and must be decoded whole to reach the live edge.
    const behind = this.keyframesFed > 1 && decoder.decodeQueueSize > this.maxQueue;
    if (!p.header.keyframe) {
      if (this.keyframeDue) return;
      if (behind) {
        // Behind the live edge: the rest of this GOP would only add delay.
        this.keyframeDue = true;
        this.stats.late++;
        return;
      }
    } else {
      this.keyframesFed++;
      if (behind) {
        decoder.reset(); // drop the backlog; the keyframe starts afresh
        decoder.configure(this.config!);
        this.stats.late++;
      }
    }
    let data = p.data;
    if (this.keyframeDue && this.extradata.length > 0) data = concat(this.extradata, data);
    this.keyframeDue = false;
    decoder.decode(new EncodedVideoChunk({
      type: p.header.keyframe ? 'key' : 'delta',
      // The capture time rides through the decoder: latency is measured when the frame is drawn.
      timestamp: Math.round(p.header.captureTime * 1000),
      data,
    }));
  }

  /** Stops decoding; the canvas keeps its last picture. */
  close(): void {
    this.epoch++;
    this.closeDecoder();
    this.phase = 'idle';
    this.held = [];
    this.waiting?.close(); // never drawn; a VideoFrame holds decoder memory until closed
    this.waiting = null;
  }

  private start(epoch: number): void {
    this.decoder = new VideoDecoder({
      output: (frame) => this.onOutput(frame, epoch),
      error: (e) => {
        if (epoch !== this.epoch) return;
        this.stats.errors++;
        this.phase = 'idle';
        this.opts.onError?.(`decoder error: ${e.message}`);
      },
    });
    this.decoder.configure(this.config!);
    this.stats.configurations++;
    this.phase = 'decoding';
    this.keyframeDue = true;
    this.keyframesFed = 0;
  }

  private onOutput(frame: VideoFrame, epoch: number): void {
    if (epoch !== this.epoch) {
      frame.close();
      return;
    }
    this.stats.decoded++;
    // Only the newest frame waits for the screen: an older one would be late.
    if (this.waiting) {
      this.waiting.close();
      this.stats.replaced++;
    }
    this.waiting = frame;
    if (this.drawScheduled) return;
    this.drawScheduled = true;
    requestAnimationFrame(() => this.draw());
  }

  private draw(): void {
    this.drawScheduled = false;
    const frame = this.waiting;
    if (!frame) return;
    this.waiting = null;
    const canvas = this.opts.canvas;
    // Resized only now, in the task that draws: the old picture stays until this one replaces it.
    if (canvas.width !== frame.displayWidth || canvas.height !== frame.displayHeight) {
      canvas.width = frame.displayWidth;
      canvas.height = frame.displayHeight;
    }
    this.ctx.drawImage(frame, 0, 0);
    const info: FrameInfo = {
      width: frame.displayWidth,
      height: frame.displayHeight,
      quality: this.codec?.quality ?? 'main',
      latencyMs: Date.now() - frame.timestamp / 1000,
    };
    frame.close();
    this.stats.drawn++;
    this.opts.onFrame?.(info);
  }

  private closeDecoder(): void {
    if (this.decoder && this.decoder.state !== 'closed') this.decoder.close();
    this.decoder = null;
  }
}

function fromBase64(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
