/**
 * One HTTP MJPEG viewer (`multipart/x-mixed-replace`, zms' framing): the
 * 200 and its headers go out with the first picture, so a stream that cannot
 * start is answered with an error status instead. Each part is built once per
 * picture for every viewer (CachedPicture.mjpegPart). A viewer that reads
 * slowly skips pictures while its socket queue is over the edge's soft limit
 * and is cut past the hard limit (send-budget.ts): it never buffers without
 * bound.
 */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { edgeMetrics } from '../../shared/metrics.js';
import { MJPEG_BOUNDARY, type CachedPicture } from './cached-picture.js';
import type { PictureSubscriber } from './picture-channel.js';
import { SendBudget, type SendLimits } from './send-budget.js';

export const MJPEG_CONTENT_TYPE = `multipart/x-mixed-replace; boundary=${MJPEG_BOUNDARY}`;

/** How the stream began: its first picture was written, or the reason it could not start. */
export type FirstOutcome = { ok: true } | { ok: false; error: unknown };

export class MjpegResponse implements PictureSubscriber {
  private started = false;
  private readonly budget: SendBudget;
  private settle: ((outcome: FirstOutcome) => void) | null = null;
  private readonly label: string;
  private readonly m = edgeMetrics();
  /** Settles with the first picture written or the first failure, whichever comes first. */
  readonly first: Promise<FirstOutcome>;

  constructor(
    private readonly res: ServerResponse,
    private readonly headers: OutgoingHttpHeaders,
    limits: SendLimits,
    monitorId: number,
  ) {
    this.label = String(monitorId);
    this.budget = new SendBudget(res.socket as Socket, limits, () => {
      this.m.droppedClients.inc({ reason: 'slow_consumer' });
      res.destroy();
    });
    this.first = new Promise((resolve) => (this.settle = resolve));
  }

  deliver(picture: CachedPicture): void {
    if (this.res.destroyed) return;
    if (!this.started) {
      this.started = true;
      // As zms: no chunked encoding, the stream ends when the connection does.
      this.res.useChunkedEncodingByDefault = false;
      this.res.writeHead(200, { 'content-type': MJPEG_CONTENT_TYPE, ...this.headers });
      this.settle?.({ ok: true });
    }
    const room = this.budget.check();
    if (room === 'closed') return;
    if (room === 'over_soft') {
      this.m.droppedFrames.inc({ monitor: this.label });
      return;
    }
    const part = picture.mjpegPart();
    this.res.write(part);
    this.m.sentFrames.inc();
    this.m.sentBytes.inc(part.length);
  }

  /** Before the first picture this ends the wait with an error; after it the stream stays open and resumes when pictures do. */
  failed(error: unknown): void {
    if (!this.started) this.settle?.({ ok: false, error });
  }
}
