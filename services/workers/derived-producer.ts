/**
 * One derived picture stream (monitor, spec, fps), run as a long BullMQ job:
 * while anyone wants it (the `want` key lives), each tick takes the newest
 * frame of the stream pictureSource names (the sub-stream while it is live
 * and the pictures fit within it, else main; looked at again with every want
 * check), encodes it if it is new, and appends it to the capped stream.
 * If this worker dies, the job's lock expires, BullMQ moves it back to the
 * queue as stalled and another worker carries on.
 */
import type { Job } from 'bullmq';
import { logger } from '../../shared/log.js';
import { workerMetrics } from '../../shared/metrics.js';
import { encodePicture } from '../../shared/pictures/picture.js';
import { specVariant } from '../../shared/pictures/picture-spec.js';
import { pictureSource, type PictureSource } from '../../shared/pictures/picture-source.js';
import { derivedVariant, type DerivedJob } from '../../shared/pictures/queues.js';
import { monitorKeys, pictureKeys, type Quality } from '../../shared/redis-keys.js';
import type { RedisClient } from '../../shared/redis.js';
import type { Feeds } from './feeds.js';
import type { FeedMode } from './monitor-feed.js';
import type { PictureEncoder } from './picture-encoder.js';

/** Pictures kept in a derived stream: enough for a reader that was a few ticks behind. */
const STREAM_LENGTH = 16;
/** How often the producer checks that someone still wants the stream. */
const WANT_CHECK_MS = 500;
/** How often the producer looks for a new frame: a picture follows its frame by at most this. */
const LOOK_MS = 50;
/**
 * The least time between two pictures, as a share of 1/fps. Pictures keep to
 * a schedule of one slot per 1/fps (never above the rate on average), but one
 * that comes late may be followed sooner, so frames arriving with jitter at
 * the picture rate (keyframes at 1 fps) are each shown, not every other one.
 */
const MIN_GAP = 0.5;
const log = logger('derived-producer');

export class DerivedProducer {
  private readonly m = workerMetrics();

  constructor(private readonly redis: RedisClient, private readonly feeds: Feeds, private readonly encoder: PictureEncoder) {}

  async process(job: Job<DerivedJob>, stop: AbortSignal): Promise<void> {
    const { monitorId, spec, fps } = job.data;
    const keys = pictureKeys(monitorId, derivedVariant(specVariant(spec), fps));
    let source = await pictureSource(this.redis, monitorId, spec);
    let hold = await this.holdFeed(monitorId, source, fps);
    this.m.derivedStreams.inc();
    log.info('derived stream started', { monitor: monitorId, variant: keys.stream, quality: source.quality, mode: hold.mode });
    const intervalMs = 1000 / fps;
    let last = '';
    /** When the next picture may go. */
    let due = Date.now();
    let checkedAt = 0;
    let failure: string | null = null;
    try {
      while (!stop.aborted) {
        const now = Date.now();
        if (now - checkedAt >= WANT_CHECK_MS) {
          if (!(await this.redis.exists(keys.want))) break;
          checkedAt = now;
          const next = await pictureSource(this.redis, monitorId, spec);
          if (next.quality !== source.quality) {
            hold.release();
            source = next;
            hold = await this.holdFeed(monitorId, source, fps);
            log.info('derived stream switched streams', { monitor: monitorId, variant: keys.stream, quality: source.quality, mode: hold.mode });
          }
        }
        const feed = hold.feed();
        const info = feed.latestInfo;
        const id = info && `${source.quality}.${info.generation}.${info.sequence}`;
        const frame = id && id !== last && now >= due ? feed.takeLatest() : null;
        if (frame) {
          last = `${source.quality}.${frame.generation}.${frame.sequence}`;
          due = Math.max(due + intervalMs, now + intervalMs * MIN_GAP);
          const picture = await this.encoder.encode(monitorId, source.quality, frame, source.spec).finally(() => frame.frame.free());
          await this.redis.xadd(keys.stream, 'MAXLEN', '~', STREAM_LENGTH, '*', 'p', encodePicture(picture));
          this.m.pictures.inc({ source: 'derived', quality: source.quality });
        }
        await sleep(Math.min(LOOK_MS, Math.max(1, due - Date.now())), stop);
      }
    } catch (err) {
      // The job fails; the edges' next want() queues it again.
      failure = (err as Error).message;
      throw err;
    } finally {
      hold.release();
      this.m.derivedStreams.dec();
      const reason = failure ?? (stop.aborted ? 'worker stopping' : 'nobody wants it');
      log[failure ? 'warn' : 'info']('derived stream stopped', { monitor: monitorId, variant: keys.stream, reason });
    }
  }

  private async holdFeed(monitorId: number, source: PictureSource, fps: number) {
    const mode = await this.modeFor(monitorId, source.quality, fps);
    return { mode, ...this.feeds.hold(monitorId, source.quality, mode) };
  }

  /** Keyframes only when the wanted rate is at or below the stream's keyframe rate. */
  private async modeFor(monitorId: number, quality: Quality, fps: number): Promise<FeedMode> {
    const ids = await this.redis.lrange(monitorKeys(monitorId, quality).keyframes, -2, -1);
    if (ids.length < 2) return 'full';
    const gopMs = Number(ids[1].split('-')[0]) - Number(ids[0].split('-')[0]);
    return gopMs > 0 && 1000 / fps >= gopMs * 0.95 ? 'keyframe' : 'full';
  }
}

function sleep(ms: number, stop: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      stop.removeEventListener('abort', done);
      resolve();
    }
    stop.addEventListener('abort', done, { once: true });
  });
}
