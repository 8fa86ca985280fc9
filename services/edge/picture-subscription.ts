/**
 * One WebSocket client's `image` subscription or MJPEG `stream`. Each picture
 * replaces the last, so a client over its soft send limit skips pictures (and
 * is told how many when it catches up); it never grows a queue. Past the
 * budget the connection is closed, as for video (send-budget.ts).
 */
import { errorReply, type DroppedReply, type RequestId } from '../../shared/protocol.js';
import { edgeMetrics } from '../../shared/metrics.js';
import type { CachedPicture, PictureKind } from './cached-picture.js';
import type { PictureSubscriber } from './picture-channel.js';
import { pictureProtocolError } from './picture-errors.js';
import type { Outlet } from './video-subscription.js';

export class PictureSubscription implements PictureSubscriber {
  private skipped = 0;
  private readonly label: string;
  private readonly m = edgeMetrics();

  constructor(
    private readonly outlet: Outlet,
    readonly monitorId: number,
    private readonly kind: PictureKind,
    /** Echoed in every payload's metadata on the per-monitor endpoint, as the draft does for streams. */
    private readonly requestId?: RequestId,
  ) {
    this.label = String(monitorId);
  }

  deliver(picture: CachedPicture): void {
    const room = this.outlet.budget.check();
    if (room === 'closed') return;
    if (room === 'over_soft') {
      this.skipped++;
      this.m.droppedFrames.inc({ monitor: this.label });
      return;
    }
    if (this.skipped > 0) {
      const notice: DroppedReply = { type: 'dropped', monitor_id: this.monitorId, count: this.skipped, reason: 'slow_consumer' };
      this.skipped = 0;
      this.outlet.sendJson(notice);
    }
    const frames = picture.frames(this.outlet.format, this.kind, this.requestId);
    this.outlet.writeFrames(frames);
    this.m.sentFrames.inc();
    this.m.sentBytes.inc(frames[0].size + frames[1].size);
  }

  failed(err: unknown): void {
    this.outlet.sendJson(errorReply(pictureProtocolError(err, this.kind, this.monitorId)));
  }
}
