/**
 * Turns a ZoneMinder Monitors row into what zmcast capture needs, the way
 * zm_ffmpeg_camera.cpp reads the same columns: `Path` is the URL, `User`/
 * `Pass` become its userinfo only when it has none, `Method` picks the RTSP
 * transport, and `Options` is an ffmpeg `key=value,key=value` dictionary.
 * `SecondPath` (the sub-stream) gets `User:Pass@` the way ZoneMinder's go2rtc
 * registration writes it (zm_monitor_go2rtc.cpp): inserted raw.
 * The result holds camera passwords: never log `source`.
 */
import type { ZmMonitorRow } from './database.js';

export interface ZmCaptureSpec {
  id: number;
  name: string;
  /** Camera URL with credentials, `synthetic:…`, or a file path. Secret. */
  source: string;
  /** The sub-stream from `SecondPath`, with credentials; absent when SecondPath is empty. Secret. */
  secondSource?: string;
  /** For rtsp:// sources: ffmpeg's `rtsp_transport`. */
  rtspTransport?: 'udp' | 'udp_multicast' | 'tcp' | 'http';
  /** ffmpeg options from the `Options` column. */
  options: Record<string, string>;
}

const TRANSPORTS: Record<string, ZmCaptureSpec['rtspTransport']> = {
  rtpUni: 'udp',
  rtpMulti: 'udp_multicast',
  rtpRtsp: 'tcp',
  rtpRtspHttp: 'http',
};

/** av_dict_parse_string(opts, s, "=", ",", 0): pairs split on ',', key and value on the first '='. */
export function parseFfmpegOptions(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of s.split(',')) {
    const p = pair.trim();
    if (!p) continue;
    const eq = p.indexOf('=');
    if (eq < 1) continue;
    out[p.slice(0, eq).trim()] = p.slice(eq + 1).trim();
  }
  return out;
}

export function toCaptureSpec(m: ZmMonitorRow): ZmCaptureSpec {
  const spec: ZmCaptureSpec = { id: m.id, name: m.name || `Monitor ${m.id}`, source: m.path.trim(), options: parseFfmpegOptions(m.options) };
  if (/^rtsps?:\/\//i.test(spec.source)) {
    const transport = TRANSPORTS[m.method];
    if (transport) spec.rtspTransport = transport;
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec.source) && (m.user || m.pass)) {
    try {
      const url = new URL(spec.source);
      if (!url.username && !url.password) {
        url.username = encodeURIComponent(m.user);
        url.password = encodeURIComponent(m.pass);
        spec.source = url.toString();
      }
    } catch {
      // Not a URL Node can parse: leave Path exactly as ZoneMinder stored it.
    }
  }
  const second = m.secondPath.trim();
  if (second !== '') spec.secondSource = withZmCredentials(second, m.user, m.pass);
  return spec;
}

/**
 * SecondPath as ZoneMinder opens it: with `User` set, `User:Pass@` goes right
 * after `rtsp://`, or `rtsp://User:Pass@` before a path without that scheme.
 * A path that names its own credentials (or a zmcast synthetic: source) is left alone.
 */
function withZmCredentials(path: string, user: string, pass: string): string {
  if (!user || path.startsWith('synthetic:') || /^rtsps?:\/\/[^/]*@/i.test(path)) return path;
  return path.startsWith('rtsp://') ? `rtsp://${user}:${pass}@${path.slice('rtsp://'.length)}` : `rtsp://${user}:${pass}@${path}`;
}
