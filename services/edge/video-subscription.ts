/**
 * One client's video subscription to one monitor. Over the connection's soft
 * limit (send-budget.ts), video for this client is skipped until the next
 * keyframe (so what it does get still decodes) and the client is told how
 * many packets it missed; past the budget the connection is closed. Other
 * viewers never wait. A `keyframes_only` subscription gets keyframes alone
 * (each decodable with the codec config sent first), for very large grids.
 */
import type { Socket } from 'node:net';
import { configToJson, type CodecConfig } from '../../shared/codec.js';
import type { CodecReply, DropReason, DroppedReply, Quality, RequestId } from '../../shared/protocol.js';
import { edgeMetrics } from '../../shared/metrics.js';
import type { CachedPacket } from './cached-packet.js';
import type { Frame } from './frame.js';
import type { SendBudget } from './send-budget.js';
import type { VideoSubscriber } from './video-channel.js';

export type WireFormat = 'zmcast' | 'zoneminder';

/** What a subscription needs from its connection. */
export interface Outlet {
  readonly format: WireFormat;
  readonly budget: SendBudget;
  sendJson(message: object): void;
  /** Writes pre-built frames; the caller has checked the budget. */
  writeFrames(frames: readonly Frame[]): void;
  /** The socket, while frames go to it as they come (open, not a coalescing montage); else null. */
  directSocket(): Socket | null;
}

export class VideoSubscription implements VideoSubscriber {
  private waitingForKeyframe = true;
  private skipping = false;
  private dropped = 0;
  private readonly subscribedAt = performance.now();
  private firstFrameSeen = false;
  private readonly label: string;
  private readonly m = edgeMetrics();

  constructor(
    private readonly outlet: Outlet,
    readonly monitorId: number,
    private readonly requestId?: RequestId,
    readonly quality: Quality = 'main',
    private readonly keyframesOnly = false,
  ) {
    this.label = String(monitorId);
  }

  begin(config: CodecConfig | null, epoch: string | null, gop: readonly CachedPacket[]): void {
    if (config) this.codec(config, epoch);
    let bytes = 0;
    for (const packet of gop) bytes += this.deliver(packet);
    if (bytes > 0) countSent(this.m, gop.length, bytes);
  }

  codec(config: CodecConfig, epoch: string | null): void {
    if (this.outlet.format !== 'zmcast') return; // the ZoneMinder format carries extradata on keyframes instead
    const reply: CodecReply = { type: 'codec', monitor_id: this.monitorId, quality: this.quality, ...configToJson(config), epoch: epoch ?? '' };
    this.outlet.sendJson(reply);
  }

  /** Packets lost before they reached this edge: said now, and video resumes at a keyframe. */
  missed(count: number, reason: DropReason): void {
    if (this.waitingForKeyframe && !this.firstFrameSeen) return; // nothing started yet: nothing missed
    this.waitingForKeyframe = true;
    const notice: DroppedReply = { type: 'dropped', monitor_id: this.monitorId, count, reason };
    this.outlet.sendJson(notice);
  }

  /** Writes the packet (or skips it) and returns the bytes written, for the channel's counters. */
  deliver(packet: CachedPacket): number {
    if (this.keyframesOnly && !packet.keyframe) return 0;
    // Sampled at keyframes: one observation per GOP per viewer is plenty for a histogram.
    if (packet.keyframe) this.m.sendQueueBytes.observe(this.outlet.budget.queued);
    const room = this.outlet.budget.check();
    if (room === 'closed') return 0;
    if (room === 'over_soft') {
      this.skip();
      return 0;
    }
    if (this.waitingForKeyframe || this.skipping) {
      if (!packet.keyframe) {
        if (this.skipping) this.skip();
        return 0;
      }
      this.waitingForKeyframe = false;
      if (this.skipping) this.resume();
    }
    const frames: readonly Frame[] = this.outlet.format === 'zmcast' ? packet.zmcastList() : packet.zoneminder(this.requestId);
    this.outlet.writeFrames(frames);
    if (!this.firstFrameSeen) {
      this.firstFrameSeen = true;
      this.m.firstFrame.observe((performance.now() - this.subscribedAt) / 1000);
    }
    return frames.length === 1 ? frames[0].size : frames[0].size + frames[1].size;
  }

  /**
   * The socket the channel may write this subscription's next packets to
   * itself (its fast lane): while it is in step (not waiting for a keyframe,
   * not skipping, every packet wanted) and frames go straight to the socket.
   */
  laneSocket(): Socket | null {
    if (this.waitingForKeyframe || this.skipping || this.keyframesOnly || this.outlet.format !== 'zmcast') return null;
    return this.outlet.directSocket();
  }

  private skip(): void {
    this.skipping = true;
    this.dropped++;
    this.m.droppedFrames.inc({ monitor: this.label });
  }

  private resume(): void {
    this.skipping = false;
    const notice: DroppedReply = { type: 'dropped', monitor_id: this.monitorId, count: this.dropped, reason: 'slow_consumer' };
    this.dropped = 0;
    this.outlet.sendJson(notice);
  }
}

/** Sent-video counters, bumped once per packet for all its viewers rather than once per viewer. */
export function countSent(m: ReturnType<typeof edgeMetrics>, frames: number, bytes: number): void {
  m.sentFrames.inc(frames);
  m.sentBytes.inc(bytes);
}
