/**
 * Browser glue for a picture subscription (`LiveClient.subscribePictures`):
 * JPEGs decoded with `createImageBitmap` and drawn on a canvas, the fallback
 * for a codec `LiveDecoder` cannot decode here.
 *
 * Like LiveDecoder it stays at the live edge: one picture decodes at a time,
 * at most one waits behind it (an older waiting one is dropped, counted
 * `replaced`), and a picture older than the one last drawn is dropped
 * (`late`). The canvas is resized only in the task that draws, so it keeps its
 * last picture (video's or a JPEG) until the next one replaces it.
 */
import type { LivePicture } from './live-client.js';

export interface PictureInfo {
  width: number;
  height: number;
  /** Capture → on screen, ms (capture and viewer clocks are assumed in step). */
  latencyMs: number;
}

export interface PictureStats {
  drawn: number;
  /** Pictures dropped for a newer one that arrived while the previous decoded. */
  replaced: number;
  /** Pictures dropped because one captured later was drawn first. */
  late: number;
  errors: number;
}

export interface PictureViewOptions {
  canvas: HTMLCanvasElement;
  onFrame?: (info: PictureInfo) => void;
  onError?: (message: string) => void;
}

export class PictureView {
  readonly stats: PictureStats = { drawn: 0, replaced: 0, late: 0, errors: 0 };
  private readonly ctx: CanvasRenderingContext2D;
  private decoding = false;
  private waiting: LivePicture | null = null;
  private lastCaptureTime = -Infinity;
  /** Bumped by close: a decode finishing afterwards draws nothing. */
  private epoch = 0;

  constructor(private readonly opts: PictureViewOptions) {
    const ctx = opts.canvas.getContext('2d');
    if (!ctx) throw new Error('no 2d context on this canvas');
    this.ctx = ctx;
  }

  push(picture: LivePicture): void {
    if (this.waiting) this.stats.replaced++;
    this.waiting = picture;
    if (!this.decoding) this.next();
  }

  /** Stops drawing; the canvas keeps its last picture. */
  close(): void {
    this.epoch++;
    this.waiting = null;
    this.decoding = false;
    this.lastCaptureTime = -Infinity;
  }

  private next(): void {
    const picture = this.waiting;
    this.waiting = null;
    if (!picture) return;
    if (picture.meta.capture_time <= this.lastCaptureTime) {
      this.stats.late++;
      return this.next();
    }
    this.decoding = true;
    const epoch = this.epoch;
    this.decode(picture, epoch)
      .catch((err: unknown) => {
        if (epoch !== this.epoch) return;
        this.stats.errors++;
        this.opts.onError?.(`picture not decoded: ${err instanceof Error ? err.message : String(err)}`);
      })
      .finally(() => {
        if (epoch !== this.epoch) return;
        this.decoding = false;
        this.next();
      });
  }

  private async decode(picture: LivePicture, epoch: number): Promise<void> {
    const bitmap = await createImageBitmap(new Blob([picture.data], { type: 'image/jpeg' }));
    if (epoch !== this.epoch) return bitmap.close();
    this.draw(bitmap, picture);
  }

  private draw(bitmap: ImageBitmap, picture: LivePicture): void {
    const canvas = this.opts.canvas;
    if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
      canvas.width = bitmap.width;
      canvas.height = bitmap.height;
    }
    this.ctx.drawImage(bitmap, 0, 0);
    bitmap.close();
    this.lastCaptureTime = picture.meta.capture_time;
    this.stats.drawn++;
    this.opts.onFrame?.({ width: picture.meta.width, height: picture.meta.height, latencyMs: Date.now() - picture.meta.capture_time });
  }
}
