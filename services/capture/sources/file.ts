/**
 * A video file played as a live camera: looped forever, paced at real time by
 * its decode timestamps, with timestamps that keep rising across loops. MP4 and
 * MKV store H.264/H.265 length-prefixed; a bitstream filter rewrites them to
 * Annex-B (with parameter sets before keyframes). TS and raw streams already are.
 */
import '../../../shared/polyfills.js';
import { BitStreamFilterAPI, Demuxer, type IRational } from 'node-av';
import { isAnnexB } from '../../../shared/codec.js';
import { NO_TIMESTAMP } from '../../../shared/packet.js';
import type { SourceInfo, SourcePacket, VideoSource } from '../source.js';
import { SourceGuard, endIfClosed } from './guard.js';
import { PacketReader } from './packet-reader.js';
import { Pacer } from './pacer.js';
import { passthroughStream, streamInfo, toSourcePacket } from './stream-info.js';

/** One play-through of the file. */
interface Pass {
  reader: PacketReader;
  bsf: BitStreamFilterAPI | null;
  timeBase: IRational;
  info: SourceInfo;
}

export class FileSource implements VideoSource {
  private readonly guard = new SourceGuard();
  private readonly pacer = new Pacer(this.guard.signal);
  private readonly timeline = new LoopTimeline();
  private pass: Pass | null = null;
  private readonly queue: { packet: SourcePacket; dueUs: bigint }[] = [];

  constructor(private readonly path: string) {}

  open(): Promise<SourceInfo> {
    return this.guard.run(async () => {
      this.pass = await openPass(this.path);
      return this.pass.info;
    });
  }

  async *packets(): AsyncIterable<SourcePacket> {
    while (!this.guard.closed) {
      const next = await this.guard.run(() => this.nextPacket()).catch(endIfClosed);
      if (!next) return;
      await this.pacer.wait(next.dueUs);
      if (this.guard.closed) return;
      yield next.packet;
    }
  }

  close(): Promise<void> {
    return this.guard.close(() => this.pass?.reader.interrupt(), async () => {
      await closePass(this.pass);
      this.pass = null;
    });
  }

  private async nextPacket(): Promise<{ packet: SourcePacket; dueUs: bigint } | null> {
    while (this.queue.length === 0) {
      const pass = this.pass!;
      const packet = await pass.reader.next();
      if (!packet) {
        // An empty file would loop hot; a file replaced by one in another format needs new decoders.
        if (!this.timeline.endPass()) return null;
        await closePass(pass);
        this.pass = null;
        const again = await openPass(this.path);
        this.pass = again;
        if (!sameFormat(again.info, pass.info)) return null;
        continue;
      }
      const out = pass.bsf ? await pass.bsf.filterAll(packet) : [packet];
      for (const p of out) {
        this.queue.push(this.timeline.place(toSourcePacket(p, pass.timeBase)));
        if (p !== packet) p.free();
      }
    }
    return this.queue.shift()!;
  }
}

async function openPass(path: string): Promise<Pass> {
  const demuxer = await Demuxer.open(path);
  try {
    const { stream, codec } = passthroughStream(demuxer);
    const raw = stream.codecpar.extradata;
    // avcC/hvcC extradata means length-prefixed packets.
    const needsAnnexB = raw !== null && raw.length > 0 && !isAnnexB(raw);
    const bsf = needsAnnexB ? BitStreamFilterAPI.create(codec === 'h265' ? 'hevc_mp4toannexb' : 'h264_mp4toannexb', stream) : null;
    return { reader: new PacketReader(demuxer, stream), bsf, timeBase: stream.timeBase, info: streamInfo(stream, codec) };
  } catch (err) {
    await demuxer.close();
    throw err;
  }
}

async function closePass(pass: Pass | null): Promise<void> {
  if (!pass) return;
  pass.bsf?.close();
  await pass.reader.close();
}

function sameFormat(a: SourceInfo, b: SourceInfo): boolean {
  return a.codec === b.codec && a.width === b.width && a.height === b.height && a.extradata.equals(b.extradata);
}

/** Raw H.264/H.265 files carry no timestamps; FFmpeg then assumes 25 fps. */
const DEFAULT_FRAME_US = 40_000n;

/**
 * Maps each pass's timestamps onto one rising timeline. A pass lasts from its
 * earliest presentation time to the end of its latest frame (decode times miss
 * the leading B-frames of an MKV). Decode order drives the pace; where the
 * file gives no dts (raw streams, those MKV B-frames) it is predicted from the
 * previous packet's duration.
 */
class LoopTimeline {
  private shiftUs = 0n;
  private nextUs: bigint | null = null;
  private span: { start: bigint; end: bigint } | null = null;

  place(p: SourcePacket): { packet: SourcePacket; dueUs: bigint } {
    const duration = p.durationUs > 0 ? BigInt(p.durationUs) : DEFAULT_FRAME_US;
    const dts = p.dtsUs !== NO_TIMESTAMP ? p.dtsUs : this.nextUs ?? (p.ptsUs !== NO_TIMESTAMP ? p.ptsUs : 0n);
    this.nextUs = dts + duration;
    const t = p.ptsUs !== NO_TIMESTAMP ? p.ptsUs : dts;
    this.span = this.span
      ? { start: min(this.span.start, t), end: max(this.span.end, t + duration) }
      : { start: t, end: t + duration };
    const shift = (ts: bigint) => (ts === NO_TIMESTAMP ? ts : ts + this.shiftUs);
    return { packet: { ...p, ptsUs: shift(p.ptsUs), dtsUs: shift(p.dtsUs) }, dueUs: dts + this.shiftUs };
  }

  /** Ends a pass; false when it had no packets at all. */
  endPass(): boolean {
    if (!this.span) return false;
    this.shiftUs += this.span.end - this.span.start;
    this.span = this.nextUs = null;
    return true;
  }
}

const min = (a: bigint, b: bigint) => (a < b ? a : b);
const max = (a: bigint, b: bigint) => (a > b ? a : b);
