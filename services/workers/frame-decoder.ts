/**
 * One video decoder for one monitor's packets as capture stored them
 * (Annex-B, parameter sets inline or in the codec config). It keeps only the
 * newest decoded frame: pictures are of the current moment.
 */
import '../../shared/polyfills.js';
import {
  AV_CODEC_FLAG_LOW_DELAY, AV_CODEC_ID_AV1, AV_CODEC_ID_H264, AV_CODEC_ID_HEVC, AVERROR_EAGAIN,
  Codec, CodecContext, Frame, Packet, Rational, type AVCodecID,
} from 'node-av';
import type { CodecConfig, VideoCodec } from '../../shared/codec.js';
import { PictureError } from '../../shared/pictures/picture-spec.js';

const MICROSECONDS = new Rational(1, 1_000_000);
const SQUARE = new Rational(1, 1);
const CODEC_IDS: Record<VideoCodec, AVCodecID> = { h264: AV_CODEC_ID_H264, h265: AV_CODEC_ID_HEVC, av1: AV_CODEC_ID_AV1 };

/** The frame a packet became, and which packet that was. */
export interface DecodedFrame {
  frame: Frame;
  generation: number;
  sequence: number;
  captureTime: number;
}

export interface DecoderOptions {
  /**
   * Skip the deblocking filter: cheaper, and invisible once a picture is
   * scaled down; only for keyframes (a P-frame would build on the unfiltered
   * reference and drift).
   */
  skipLoopFilter?: boolean;
}

export class FrameDecoder {
  private readonly ctx = new CodecContext();
  private readonly packet = new Packet();
  private scratch = new Frame();
  private newest = new Frame();
  private newestInfo: Omit<DecodedFrame, 'frame'> | null = null;
  private closed = false;

  private constructor(readonly config: CodecConfig) {
    this.packet.alloc();
    this.scratch.alloc();
    this.newest.alloc();
  }

  /** Opens a decoder for the config; PictureError('unsupported_codec') when this build has none. */
  static async open(config: CodecConfig, opts: DecoderOptions = {}): Promise<FrameDecoder> {
    const id = CODEC_IDS[config.codec];
    const codec = id === undefined ? null : Codec.findDecoder(id);
    if (!codec) throw new PictureError('unsupported_codec', `no decoder for ${String(config.codec)} in this worker`);
    const d = new FrameDecoder(config);
    d.ctx.allocContext3(codec);
    if (config.extradata.length > 0) d.ctx.extraData = config.extradata;
    // One thread: a worker serves many monitors, each decoder should cost one core at most,
    // and frame threading would delay every output by a frame per thread.
    d.ctx.threadCount = 1;
    d.ctx.flags = AV_CODEC_FLAG_LOW_DELAY;
    if (opts.skipLoopFilter) d.ctx.setOption('skip_loop_filter', 'all');
    const ret = await d.ctx.open2(codec);
    if (ret < 0) {
      d.close();
      throw new PictureError('unsupported_codec', `cannot open the ${config.codec} decoder (error ${ret})`);
    }
    return d;
  }

  /**
   * The newest frame decoded so far, as a new reference to its buffers (no
   * copy): decoding goes on while it is encoded. The caller frees it.
   */
  takeLatest(): DecodedFrame | null {
    if (!this.newestInfo) return null;
    const frame = this.newest.clone();
    return frame && { frame, ...this.newestInfo };
  }

  /** Which packet the newest frame came from, without taking it. */
  get latestInfo(): Omit<DecodedFrame, 'frame'> | null {
    return this.newestInfo;
  }

  /** Feeds one packet; true when it produced a new newest frame. A damaged packet is skipped, not fatal. */
  async decode(data: Buffer, info: Omit<DecodedFrame, 'frame'>, keyframe: boolean): Promise<boolean> {
    if (this.closed) return false;
    this.packet.data = data;
    this.packet.isKeyframe = keyframe;
    const sent = await this.ctx.sendPacket(this.packet);
    this.packet.unref();
    if (sent < 0 && sent !== AVERROR_EAGAIN) return false;
    let produced = false;
    // receiveFrame unrefs its target first: decode into scratch, keep the newest.
    while ((await this.ctx.receiveFrame(this.scratch)) >= 0) {
      // The scaler's filter graph wants a time base and aspect on its input; raw packets carry neither.
      // Set before the frame becomes the newest: takeLatest() may run while the next receiveFrame is awaited.
      this.scratch.timeBase = MICROSECONDS;
      if (this.scratch.sampleAspectRatio.num === 0) this.scratch.sampleAspectRatio = SQUARE;
      [this.newest, this.scratch] = [this.scratch, this.newest];
      this.newestInfo = info;
      this.scratch.unref();
      produced = true;
    }
    return produced;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ctx.freeContext();
    this.packet.free();
    this.scratch.free();
    this.newest.free();
  }
}
