/**
 * Turns a decoded frame into a Picture: JPEG through node-av's Scaler
 * (swscale + mjpeg, pooled per size: ~3-6 ms at 720p, a third of RGB +
 * sharp), raw rgba/yuv420p through swscale into a frame of FFmpeg's own
 * alignment, so the stated line sizes are the real (possibly padded) ones.
 */
import '../../shared/polyfills.js';
import { AV_PIX_FMT_RGBA, AV_PIX_FMT_YUV420P, Frame, Scaler, SoftwareScaleContext, SWS_BILINEAR, type AVPixelFormat } from 'node-av';
import { contentTypeOf, type Picture } from '../../shared/pictures/picture.js';
import { DEFAULT_QUALITY, outputSize, type PictureSpec } from '../../shared/pictures/picture-spec.js';
import { workerMetrics } from '../../shared/metrics.js';
import { logger } from '../../shared/log.js';
import type { Quality } from '../../shared/redis-keys.js';
import type { DecodedFrame } from './frame-decoder.js';

interface RawTarget {
  sws: SoftwareScaleContext;
  frame: Frame;
  key: string;
}

const log = logger('picture-encoder');

export class PictureEncoder {
  /**
   * One Scaler per source size (main and sub-stream, a camera's new
   * resolution): node-av pools a Scaler's graphs by output size only, and a
   * pooled graph refuses a frame of another input size (EINVAL).
   */
  private readonly scalers = new Map<string, Scaler>();
  /** swscale contexts and output frames by source and target geometry; few per worker (sizes repeat). */
  private readonly raw = new Map<string, RawTarget>();
  private readonly m = workerMetrics();
  /** The end of the last encode queued: node-av's pooled scalers and encoders crash when two calls share one at once. */
  private tail: Promise<unknown> = Promise.resolve();

  /** Encodes one at a time, in call order (a worker's pictures cost one core's worth of encoding at most). */
  encode(monitorId: number, quality: Quality, decoded: DecodedFrame, spec: PictureSpec): Promise<Picture> {
    const run = this.tail.then(() => this.encodeNow(monitorId, quality, decoded, spec));
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async encodeNow(monitorId: number, quality: Quality, decoded: DecodedFrame, spec: PictureSpec): Promise<Picture> {
    const started = performance.now();
    const { frame } = decoded;
    const size = outputSize(spec, frame);
    let data: Buffer;
    let lineSizes: number[] = [];
    if (spec.format === 'jpeg') {
      const resize = size.width === frame.width && size.height === frame.height ? undefined : size;
      try {
        data = await this.scalerFor(frame).toJpeg(frame, { resize, quality: spec.quality ?? DEFAULT_QUALITY });
      } catch (err) {
        // node-av keeps a graph that failed to initialise and fails every later frame with it: start afresh.
        this.dropScaler(frame);
        throw err;
      }
    } else if (spec.format === 'yuv420p' && frame.format === AV_PIX_FMT_YUV420P && size.width === frame.width && size.height === frame.height) {
      ({ data, lineSizes } = planes(frame, size.height));
    } else {
      const target = this.rawTarget(frame, size, spec.format === 'rgba' ? AV_PIX_FMT_RGBA : AV_PIX_FMT_YUV420P);
      const ret = await target.sws.scaleFrame(target.frame, frame);
      if (ret < 0) throw new Error(`swscale failed (error ${ret})`);
      ({ data, lineSizes } = planes(target.frame, size.height));
    }
    this.m.encodeSeconds.observe({ format: spec.format }, (performance.now() - started) / 1000);
    return {
      monitorId, format: spec.format, contentType: contentTypeOf(spec.format), width: size.width, height: size.height,
      lineSizes, data, captureTime: decoded.captureTime, quality, generation: decoded.generation, sequence: decoded.sequence,
    };
  }

  close(): void {
    for (const s of this.scalers.values()) s.close();
    this.scalers.clear();
    for (const t of this.raw.values()) {
      t.frame.free();
      t.sws.freeContext();
    }
    this.raw.clear();
  }

  private scalerFor(frame: Frame): Scaler {
    const key = scalerKey(frame);
    let scaler = this.scalers.get(key);
    if (!scaler) {
      scaler = new Scaler({ flags: SWS_BILINEAR });
      this.scalers.set(key, scaler);
    }
    return scaler;
  }

  private dropScaler(frame: Frame): void {
    const key = scalerKey(frame);
    this.scalers.get(key)?.close();
    this.scalers.delete(key);
    log.warn('JPEG encoding failed; its scaler is rebuilt for the next picture', { size: key });
  }

  private rawTarget(src: Frame, size: { width: number; height: number }, format: AVPixelFormat): RawTarget {
    const key = `${src.width}x${src.height}/${src.format}>${size.width}x${size.height}/${format}`;
    let t = this.raw.get(key);
    if (!t) {
      const sws = new SoftwareScaleContext();
      sws.getContext(src.width, src.height, src.format as AVPixelFormat, size.width, size.height, format, SWS_BILINEAR);
      const frame = new Frame();
      frame.alloc();
      frame.width = size.width;
      frame.height = size.height;
      frame.format = format;
      const ret = frame.allocBuffer();
      if (ret < 0) throw new Error(`cannot allocate a ${size.width}x${size.height} frame (error ${ret})`);
      t = { sws, frame, key };
      this.raw.set(key, t);
    }
    return t;
  }
}

/** Scalers are kept per source size (see `scalers`). */
const scalerKey = (frame: Frame) => `${frame.width}x${frame.height}`;

/** The planes of a frame as one buffer, rows as FFmpeg laid them out (line sizes may exceed the visible width). */
function planes(frame: Frame, height: number): { data: Buffer; lineSizes: number[] } {
  const bufs = frame.data ?? [];
  const lineSizes = frame.linesize.slice(0, bufs.length);
  const rows = (plane: number) => (frame.format === AV_PIX_FMT_YUV420P && plane > 0 ? Math.ceil(height / 2) : height);
  // FFmpeg's plane buffers may extend past the last row; only the rows are the picture.
  return { data: Buffer.concat(bufs.map((b, i) => b.subarray(0, lineSizes[i] * rows(i)))), lineSizes };
}
