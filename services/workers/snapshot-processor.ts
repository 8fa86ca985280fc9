/**
 * One snapshot job: the frame of the requested packet or a newer one from the
 * warm decoder (started from the newest keyframe if cold) of the stream the
 * job names (main, or the sub-stream for a picture that fits within it),
 * encoded to the spec, stored as the variant's `latest` picture. Errors leave as
 * `code: message` reasons the picture client turns back into PictureErrors.
 */
import type { Job } from 'bullmq';
import { workerMetrics } from '../../shared/metrics.js';
import { encodePicture } from '../../shared/pictures/picture.js';
import { PictureError, specVariant } from '../../shared/pictures/picture-spec.js';
import type { SnapshotJob, SnapshotResult } from '../../shared/pictures/queues.js';
import { pictureKeys } from '../../shared/redis-keys.js';
import type { RedisClient } from '../../shared/redis.js';
import type { Feeds } from './feeds.js';
import type { PictureEncoder } from './picture-encoder.js';

/** How long a picture stays in `latest`: long enough for every waiter to read it, short enough to never show an old one for long. */
const LATEST_TTL_MS = 5000;

export class SnapshotProcessor {
  private readonly m = workerMetrics();

  constructor(private readonly redis: RedisClient, private readonly feeds: Feeds, private readonly encoder: PictureEncoder) {}

  async process(job: Job<SnapshotJob>): Promise<SnapshotResult> {
    const { monitorId, spec, frameId, deadline } = job.data;
    const { quality, spec: encoded } = job.data.source ?? { quality: 'main', spec };
    const keys = pictureKeys(monitorId, specVariant(spec));
    try {
      const left = deadline - Date.now();
      if (left <= 0) throw new PictureError('timeout', 'the request had given up before a worker took it');
      const frame = await this.feeds.forSnapshot(monitorId, quality).frameFrom(frameId, left);
      const picture = await this.encoder.encode(monitorId, quality, frame, encoded).finally(() => frame.frame.free());
      await this.redis.multi().set(keys.latest, encodePicture(picture), 'PX', LATEST_TTL_MS).del(keys.pending).exec();
      this.m.pictures.inc({ source: 'snapshot', quality });
      return { generation: picture.generation, sequence: picture.sequence };
    } catch (err) {
      const e = err instanceof PictureError ? err : new PictureError('overloaded', (err as Error).message);
      this.m.snapshotErrors.inc({ code: e.code });
      await this.redis.del(keys.pending);
      // A plain Error: BullMQ keeps its message as the failed reason.
      throw new Error(e.toReason());
    }
  }
}
