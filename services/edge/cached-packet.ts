/**
 * A video packet as the edge holds it: the bytes read from Redis plus the
 * outgoing frames for each wire format, built lazily and at most once per
 * packet, whatever the number of viewers.
 */
import { decodeHeader, packetPayload, NO_TIMESTAMP, type PacketHeader } from '../../shared/packet.js';
import { CONTENT_TYPES, type CodecConfig } from '../../shared/codec.js';
import type { PayloadMeta, RequestId } from '../../shared/protocol.js';
import { binaryFrame, textFrame, type Frame } from './frame.js';
import { giveBack, memoryOf, pin } from './packet-memory.js';

export class CachedPacket {
  readonly header: PacketHeader;
  /** Its memory went back for reuse (packet-memory.ts): a use after that is a bug, and throws. */
  private released = false;
  private zmcastFrames: readonly [Frame] | null = null;
  private zmBytes: Frame | null = null;
  private zmMeta: Map<RequestId | undefined, Frame> | null = null;

  constructor(
    readonly id: string,
    /** The stored packet: zmcast header + codec bytes. */
    readonly raw: Buffer,
    /** Codec config in force when the packet was read. */
    readonly config: CodecConfig | null,
  ) {
    this.header = decodeHeader(raw);
  }

  get keyframe(): boolean {
    return this.header.keyframe;
  }

  /** `/ws`: one self-describing binary frame, the stored bytes unchanged. */
  zmcast(): Frame {
    return this.zmcastList()[0];
  }

  /** The same frame as the list every viewer's write takes (one array per packet, not one per viewer). */
  zmcastList(): readonly [Frame] {
    if (this.released) throw new UseAfterRelease(this.id);
    return (this.zmcastFrames ??= [binaryFrame(this.raw)]);
  }

  /** ZoneMinder draft: a JSON metadata text frame, then the codec bytes (keyframes carry extradata first). */
  zoneminder(requestId?: RequestId): [Frame, Frame] {
    if (this.released) throw new UseAfterRelease(this.id);
    this.zmBytes ??= binaryFrame(this.zmPayload());
    this.zmMeta ??= new Map();
    let meta = this.zmMeta.get(requestId);
    if (!meta) {
      meta = textFrame(JSON.stringify(this.meta(this.zmBytes.payloadBytes, requestId)));
      // Only a handful of distinct request ids are ever seen; don't let a client grow this.
      if (this.zmMeta.size < 8) this.zmMeta.set(requestId, meta);
    }
    return [meta, this.zmBytes];
  }

  /** Something will hold this packet past its channel's GOP (a one-shot request): its memory is never reused. */
  pin(): void {
    pin(memoryOf(this.raw));
  }

  /** Its channel is done with it: its memory goes back for reuse, unless something may still hold it. */
  release(): void {
    const memory = memoryOf(this.raw);
    if (memory === undefined || memory.pinned) return;
    this.released = true;
    giveBack(this.raw);
  }

  /** The codec bytes a player needs: extradata first on keyframes so each one decodes alone. */
  zmPayload(): Buffer {
    const payload = packetPayload(this.raw);
    const extradata = this.config?.extradata;
    return this.keyframe && extradata && extradata.length > 0 ? Buffer.concat([extradata, payload]) : payload;
  }

  meta(payloadBytes: number, requestId?: RequestId): PayloadMeta {
    const codec = this.config?.codec ?? 'h264';
    const m: PayloadMeta = {
      type: 'stream',
      format: codec,
      content_type: CONTENT_TYPES[codec],
      monitor_id: this.header.monitorId,
      width: this.config?.width ?? 0,
      height: this.config?.height ?? 0,
      line_size: 0,
      colours: 0,
      subpixel_order: 0,
      image_count: this.header.sequence,
      sequence: this.header.sequence,
      keyframe: this.header.keyframe,
      payload_bytes: payloadBytes,
      generation: this.header.generation,
      capture_time: this.header.captureTime,
      pts_us: this.header.pts === NO_TIMESTAMP ? null : Number(this.header.pts),
    };
    if (requestId !== undefined) m.request_id = requestId;
    return m;
  }
}

export class UseAfterRelease extends Error {
  constructor(id: string) {
    super(`packet ${id} used after its memory was given back for reuse`);
  }
}
