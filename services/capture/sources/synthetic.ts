/**
 * A synthetic camera: FFmpeg's testsrc2 pattern (with a wall clock when fonts
 * are available) encoded live, so demos and tests need no hardware. This is
 * the one source that encodes; it behaves like a camera otherwise: real-time
 * pace, fixed GOP, no B-frames, parameter sets inline in every keyframe.
 *
 *   synthetic:?size=640x360&fps=25&gop=50&bitrate=800000&codec=h264|h265
 */
import '../../../shared/polyfills.js';
import { Decoder, Demuxer, Encoder, FF_ENCODER_LIBX264, FF_ENCODER_LIBX265 } from 'node-av';
import { parameterSetsOf } from '../../../shared/codec.js';
import { logger } from '../../../shared/log.js';
import type { SourceInfo, SourcePacket, VideoSource } from '../source.js';
import { SourceConfigError } from './errors.js';
import { SourceGuard, endIfClosed } from './guard.js';
import { PacketReader } from './packet-reader.js';
import { Pacer } from './pacer.js';
import { toSourcePacket } from './stream-info.js';

export interface SyntheticOptions {
  width: number;
  height: number;
  fps: number;
  gop: number;
  bitrate: number;
  codec: 'h264' | 'h265';
}

const log = logger('synthetic');

export function parseSynthetic(source: string): SyntheticOptions {
  const query = source.includes('?') ? source.slice(source.indexOf('?') + 1) : '';
  const params = new URLSearchParams(query);
  const bad = (msg: string) => new SourceConfigError(`${source}: ${msg}`);
  for (const key of params.keys()) {
    if (!['size', 'fps', 'gop', 'bitrate', 'codec'].includes(key)) throw bad(`unknown parameter ${key}`);
  }
  const int = (key: string, def: number, min: number, max: number) => {
    const raw = params.get(key);
    const n = raw === null ? def : Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) throw bad(`${key} must be an integer from ${min} to ${max}`);
    return n;
  };
  const size = /^(\d+)x(\d+)$/.exec(params.get('size') ?? '640x360');
  // yuv420p needs even sizes.
  const [width, height] = size ? [Number(size[1]), Number(size[2])] : [0, 0];
  if (!size || width < 16 || height < 16 || width > 4096 || height > 4096 || width % 2 || height % 2) {
    throw bad('size must be WIDTHxHEIGHT, even, from 16x16 to 4096x4096');
  }
  const codec = params.get('codec') ?? 'h264';
  if (codec !== 'h264' && codec !== 'h265') throw bad('codec must be h264 or h265');
  const fps = int('fps', 25, 1, 120);
  return { width, height, fps, gop: int('gop', 2 * fps, 1, 10_000), bitrate: int('bitrate', 800_000, 10_000, 100_000_000), codec };
}

export class SyntheticSource implements VideoSource {
  private readonly guard = new SourceGuard();
  private readonly pacer = new Pacer(this.guard.signal);
  private reader: PacketReader | null = null;
  private decoder: Decoder | null = null;
  private encoder: Encoder | null = null;
  /** Encoded packets not yet handed out; the first one is read by open() for its parameter sets. */
  private readonly queue: SourcePacket[] = [];

  constructor(private readonly opts: SyntheticOptions) {}

  open(): Promise<SourceInfo> {
    return this.guard.run(async () => {
      const { width, height, codec } = this.opts;
      const demuxer = await openPattern(this.opts);
      const stream = demuxer.video()!;
      this.reader = new PacketReader(demuxer, stream);
      this.decoder = await Decoder.create(stream);
      this.encoder = await createEncoder(this.opts);
      const first = await this.encodeNext();
      if (!first) throw new Error('the test pattern produced no frame');
      this.queue.unshift(first);
      // No global header: the encoder keeps SPS/PPS in the keyframes, as cameras do.
      return { codec, width, height, extradata: parameterSetsOf(codec, first.data) };
    });
  }

  async *packets(): AsyncIterable<SourcePacket> {
    while (!this.guard.closed) {
      const packet = await this.guard.run(() => this.encodeNext()).catch(endIfClosed);
      if (!packet) return;
      await this.pacer.wait(packet.dtsUs);
      if (this.guard.closed) return;
      yield packet;
    }
  }

  close(): Promise<void> {
    return this.guard.close(() => this.reader?.interrupt(), async () => {
      await this.reader?.close();
      this.decoder?.close();
      this.encoder?.close();
      this.reader = this.decoder = this.encoder = null;
    });
  }

  /** Generates, decodes (lavfi hands out wrapped frames) and encodes until one packet is ready. */
  private async encodeNext(): Promise<SourcePacket | null> {
    while (this.queue.length === 0) {
      const raw = await this.reader!.next();
      if (!raw) return null;
      for (const frame of await this.decoder!.decodeAll(raw)) {
        for (const packet of await this.encoder!.encodeAll(frame)) {
          this.queue.push(toSourcePacket(packet, packet.timeBase));
          packet.free();
        }
        frame.free();
      }
    }
    return this.queue.shift()!;
  }
}

let clockOverlay = true;

/** testsrc2 with a wall clock drawn on it; without fonts drawtext fails, and the plain pattern does. */
async function openPattern({ width, height, fps }: SyntheticOptions): Promise<Demuxer> {
  const pattern = `testsrc2=size=${width}x${height}:rate=${fps}`;
  if (clockOverlay) {
    try {
      return await Demuxer.open(
        `${pattern},drawtext=text='%{localtime}':fontsize=${Math.max(12, height >> 4)}:fontcolor=white:box=1:boxcolor=black:x=8:y=8,format=yuv420p`,
        { format: 'lavfi' },
      );
    } catch (err) {
      clockOverlay = false;
      log.info('no clock overlay on synthetic cameras (drawtext has no font)', { error: (err as Error).message });
    }
  }
  return Demuxer.open(`${pattern},format=yuv420p`, { format: 'lavfi' });
}

function createEncoder({ codec, gop, bitrate }: SyntheticOptions): Promise<Encoder> {
  // A fixed GOP (no scene-cut keyframes) keeps retention and join times predictable.
  const common = { gopSize: gop, maxBFrames: 0, bitrate };
  if (codec === 'h265') {
    return Encoder.create(FF_ENCODER_LIBX265, {
      ...common,
      options: {
        preset: 'ultrafast',
        tune: 'zerolatency',
        'x265-params': `keyint=${gop}:min-keyint=${gop}:scenecut=0:open-gop=0:repeat-headers=1:log-level=error`,
      },
    });
  }
  return Encoder.create(FF_ENCODER_LIBX264, {
    ...common,
    options: { preset: 'ultrafast', tune: 'zerolatency', 'x264-params': `scenecut=0:min-keyint=${gop}` },
  });
}
