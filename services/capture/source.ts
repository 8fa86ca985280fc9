/**
 * A camera as capture sees it: codec parameters once per connection, then
 * compressed packets in Annex-B form. Sources never decode what they pass on.
 */
import { fileURLToPath } from 'node:url';
import type { VideoCodec } from '../../shared/codec.js';
import type { MonitorSpec } from '../../shared/config.js';
import { routeFfmpegLogs } from './ffmpeg-log.js';
import { FileSource } from './sources/file.js';
import { RtspSource } from './sources/rtsp.js';
import { SyntheticSource, parseSynthetic } from './sources/synthetic.js';

export interface SourceInfo {
  codec: VideoCodec;
  width: number;
  height: number;
  /** Parameter sets in Annex-B form, or empty when the source has none out of band. */
  extradata: Buffer;
  profile?: number;
  level?: number;
}

export interface SourcePacket {
  /** Annex-B. */
  data: Buffer;
  keyframe: boolean;
  /** Microseconds, NO_TIMESTAMP when unknown. */
  ptsUs: bigint;
  dtsUs: bigint;
  durationUs: number;
}

/**
 * One connection to a camera: open() once, iterate packets() once (it ends on
 * EOF or a read error), then close(). A reconnect is a new source. close() may
 * come at any time and makes a pending open() reject and packets() end.
 */
export interface VideoSource {
  open(): Promise<SourceInfo>;
  packets(): AsyncIterable<SourcePacket>;
  close(): Promise<void>;
}

export type RtspTransport = 'udp' | 'udp_multicast' | 'tcp' | 'http';

/** A monitor as capture runs it: the configured spec, plus what a ZoneMinder Monitors row adds for RTSP cameras. */
export interface CaptureSpec extends MonitorSpec {
  /** FFmpeg's `rtsp_transport` (ZoneMinder's `Method`); TCP when absent. */
  rtspTransport?: RtspTransport;
  /** FFmpeg input options (ZoneMinder's `Options`), for rtsp:// sources. */
  options?: Record<string, string>;
}

/** Throws a SourceConfigError at once for a source string that can never work. */
export function createSource(spec: CaptureSpec, opts: { rtspTimeoutMs: number }): VideoSource {
  routeFfmpegLogs();
  const source = spec.source;
  if (source.startsWith('synthetic:')) return new SyntheticSource(parseSynthetic(source));
  if (/^rtsps?:\/\//i.test(source)) {
    return new RtspSource(source, opts.rtspTimeoutMs, { transport: spec.rtspTransport, options: spec.options });
  }
  return new FileSource(source.startsWith('file:') ? fileURLToPath(source) : source);
}
