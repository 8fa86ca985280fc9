/** What capture needs from an FFmpeg stream and packet, in zmcast's terms. */
import '../../../shared/polyfills.js';
import { AV_CODEC_ID_H264, AV_CODEC_ID_HEVC, AV_NOPTS_VALUE, avGetCodecName, avRescaleQ, type Demuxer, type IRational, type Packet, type Stream } from 'node-av';
import { extradataToAnnexB, type VideoCodec } from '../../../shared/codec.js';
import { NO_TIMESTAMP } from '../../../shared/packet.js';
import type { SourceInfo, SourcePacket } from '../source.js';
import { UnsupportedSourceError } from './errors.js';

const MICROSECONDS: IRational = { num: 1, den: 1_000_000 };

/** The video stream zmcast passes through, or UnsupportedSourceError. */
export function passthroughStream(demuxer: Demuxer): { stream: Stream; codec: VideoCodec } {
  const stream = demuxer.video();
  if (!stream) throw new UnsupportedSourceError('the source has no video stream');
  const id = stream.codecpar.codecId;
  const codec: VideoCodec | null = id === AV_CODEC_ID_H264 ? 'h264' : id === AV_CODEC_ID_HEVC ? 'h265' : null;
  if (!codec) throw new UnsupportedSourceError(`video codec ${avGetCodecName(id) ?? id} is not supported (H.264 and H.265 are)`);
  return { stream, codec };
}

export function streamInfo(stream: Stream, codec: VideoCodec): SourceInfo {
  const par = stream.codecpar;
  return {
    codec,
    width: par.width,
    height: par.height,
    extradata: extradataToAnnexB(codec, par.extradata ?? Buffer.alloc(0)),
    // FFmpeg reports -99 (FF_PROFILE_UNKNOWN / FF_LEVEL_UNKNOWN) when it does not know.
    profile: par.profile >= 0 ? par.profile : undefined,
    level: par.level >= 0 ? par.level : undefined,
  };
}

export function toMicros(ts: bigint, timeBase: IRational): bigint {
  return ts === AV_NOPTS_VALUE ? NO_TIMESTAMP : avRescaleQ(ts, timeBase, MICROSECONDS);
}

/** Copies the packet out of FFmpeg's memory; the Packet itself may be reused after this. */
export function toSourcePacket(packet: Packet, timeBase: IRational): SourcePacket {
  return {
    data: packet.data ?? Buffer.alloc(0),
    keyframe: packet.isKeyframe,
    ptsUs: toMicros(packet.pts, timeBase),
    dtsUs: toMicros(packet.dts, timeBase),
    durationUs: Number(avRescaleQ(packet.duration, timeBase, MICROSECONDS)),
  };
}
