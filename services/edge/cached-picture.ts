/**
 * A picture as the edge holds it: the worker's bytes plus the outgoing frames
 * for each wire format and the MJPEG part, each built lazily and at most once
 * per picture, whatever the number of viewers (`request_id`s aside, which
 * only one-shots and per-monitor subscriptions carry).
 */
import { encodePacket, NO_TIMESTAMP, PacketKind } from '../../shared/packet.js';
import type { PayloadMeta, RequestId } from '../../shared/protocol.js';
import type { Picture } from '../../shared/pictures/picture.js';
import { binaryFrame, textFrame, type Frame } from './frame.js';
import type { WireFormat } from './video-subscription.js';

/** `image`: an `image` command or subscription; `stream`: MJPEG (`stream` with codec mjpeg). */
export type PictureKind = 'image' | 'stream';

/** The boundary zms uses; clients written for zms look for it. */
export const MJPEG_BOUNDARY = 'ZoneMinderFrame';

/** ZoneMinder's zm_rgb.h: bytes per pixel and subpixel order of what the payload holds. */
const ZM_LAYOUT: Record<string, { colours: number; subpixelOrder: number }> = {
  jpeg: { colours: 3, subpixelOrder: 6 }, // decodes to RGB24, ZM_SUBPIX_ORDER_RGB
  rgba: { colours: 4, subpixelOrder: 8 }, // ZM_COLOUR_RGB32, ZM_SUBPIX_ORDER_RGBA
  yuv420p: { colours: 1, subpixelOrder: 11 }, // ZM_COLOUR_GRAY8 family, ZM_SUBPIX_ORDER_YUV420P
};

/** Distinct request ids remembered per picture; more are built each time and not kept. */
const MAX_CACHED_METAS = 8;

export class CachedPicture {
  private zmBytes: Frame | null = null;
  private zmcastBytes: Frame | null = null;
  private readonly metas = new Map<string, Frame>();
  private part: Buffer | null = null;

  constructor(readonly picture: Picture) {}

  /** The two frames of one payload: metadata text, then the bytes (bare on `/monitors/:id/ws`, zmcast-framed on `/ws`). */
  frames(wire: WireFormat, kind: PictureKind, requestId?: RequestId): [Frame, Frame] {
    const key = `${kind}:${requestId === undefined ? '' : `${typeof requestId}:${requestId}`}`;
    let meta = this.metas.get(key);
    if (!meta) {
      meta = textFrame(JSON.stringify(this.meta(kind, requestId)));
      if (this.metas.size < MAX_CACHED_METAS) this.metas.set(key, meta);
    }
    return [meta, wire === 'zoneminder' ? (this.zmBytes ??= binaryFrame(this.picture.data)) : (this.zmcastBytes ??= binaryFrame(this.zmcastPacket()))];
  }

  /** The draft's payload metadata, plus zmcast's `line_sizes`, `generation`, `capture_time` and `source_quality`. */
  meta(kind: PictureKind, requestId?: RequestId): PayloadMeta {
    const p = this.picture;
    const layout = ZM_LAYOUT[p.format] ?? { colours: 0, subpixelOrder: 0 };
    const m: PayloadMeta = {
      type: kind,
      format: kind === 'stream' ? 'mjpeg' : p.format,
      content_type: p.contentType,
      monitor_id: p.monitorId,
      width: p.width,
      height: p.height,
      line_size: p.lineSizes[0] ?? 0,
      colours: layout.colours,
      subpixel_order: layout.subpixelOrder,
      image_count: p.sequence,
      sequence: p.sequence,
      keyframe: true,
      payload_bytes: p.data.length,
      generation: p.generation,
      capture_time: p.captureTime,
      pts_us: null,
      line_sizes: p.lineSizes,
      source_quality: p.quality,
    };
    if (requestId !== undefined) m.request_id = requestId;
    return m;
  }

  /** One part of a `multipart/x-mixed-replace` stream, as zms writes it: boundary, headers, the JPEG, CRLF. */
  mjpegPart(): Buffer {
    if (this.part) return this.part;
    const p = this.picture;
    const head = Buffer.from(
      `--${MJPEG_BOUNDARY}\r\nContent-Type: ${p.contentType}\r\nContent-Length: ${p.data.length}\r\nX-Timestamp: ${xTimestamp(p.captureTime)}\r\n\r\n`,
    );
    this.part = Buffer.concat([head, p.data, Buffer.from('\r\n')]);
    return this.part;
  }

  /** `/ws`: a self-describing zmcast packet of kind `picture`, the picture's bytes after the 44-byte header. */
  private zmcastPacket(): Buffer {
    const p = this.picture;
    return encodePacket({
      kind: PacketKind.Picture, keyframe: true, sub: p.quality === 'sub', monitorId: p.monitorId, generation: p.generation, sequence: p.sequence,
      captureTime: p.captureTime, pts: NO_TIMESTAMP, dts: NO_TIMESTAMP, duration: 0, data: p.data,
    });
  }
}

/** zms' `X-Timestamp`: Unix seconds with six decimals, of the frame shown. */
export function xTimestamp(ms: number): string {
  return (ms / 1000).toFixed(6);
}
