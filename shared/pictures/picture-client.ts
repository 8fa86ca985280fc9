/**
 * What edges use to get pictures. A snapshot is coalesced cluster-wide: the
 * first request for a monitor and variant puts a job id into the variant's
 * `pending` key (SET NX) and queues the job; every request arriving while it
 * runs waits for that same job; one arriving after it finds the picture in
 * the `latest` key, used while it is at most one frame behind the camera.
 * So any number of edges and viewers asking at once cost one decode.
 */
import { Queue, QueueEvents } from 'bullmq';
import { monitorKeys, MONITORS_KEY, pictureKeys, QUEUE_PREFIX, WORKER_NODES_KEY, type Quality } from '../redis-keys.js';
import { decodeHeader } from '../packet.js';
import type { RedisClient } from '../redis.js';
import { blockingConnection } from './blocking-connection.js';
import { pictureClientMetrics } from '../metrics.js';
import { decodePicture, type Picture } from './picture.js';
import { PictureError, specVariant, type PictureSpec } from './picture-spec.js';
import { pictureSource } from './picture-source.js';
import { DERIVED_QUEUE, MAX_DERIVED_FPS, SNAPSHOT_QUEUE, derivedVariant, type DerivedJob, type SnapshotJob } from './queues.js';

export const DEFAULT_SNAPSHOT_TIMEOUT_MS = 3000;
/** A camera whose newest packet is older than this is down (a live camera sends many per second). */
const CAMERA_SILENT_MS = 3000;
/** How long a derived stream lives after the last want(): callers renew every 2 s at most. */
export const WANT_TTL_MS = 3000;
/** Queued snapshot jobs beyond which requests are refused as overloaded rather than queued. */
const MAX_WAITING_JOBS = 1000;

interface Newest {
  quality: Quality;
  id: string;
  generation: number;
  sequence: number;
  captureTime: number;
  /** Microseconds between frames as the packet states it (0 when unknown). */
  durationUs: number;
}

export class PictureClient {
  private readonly snapshots: Queue<SnapshotJob>;
  private readonly derived: Queue<DerivedJob>;
  private readonly events: QueueEvents;
  /** Ours to close: BullMQ leaves connections it was given open. */
  private readonly eventsConnection: RedisClient;
  private readonly m = pictureClientMetrics();
  /** Requests of this process in flight, by variant key: later ones join them (one waiter per job per edge). */
  private readonly inFlight = new Map<string, Promise<Picture>>();

  constructor(private readonly redis: RedisClient) {
    this.snapshots = new Queue(SNAPSHOT_QUEUE, { connection: redis, prefix: QUEUE_PREFIX });
    this.derived = new Queue(DERIVED_QUEUE, { connection: redis, prefix: QUEUE_PREFIX });
    // QueueEvents blocks on its connection: one of its own.
    this.eventsConnection = blockingConnection(redis, 'zmcast-picture-events');
    this.events = new QueueEvents(SNAPSHOT_QUEUE, { connection: this.eventsConnection, prefix: QUEUE_PREFIX });
    // Every waiting job adds listeners; hundreds at once are normal here.
    for (const emitter of [this.snapshots, this.events]) emitter.setMaxListeners(0);
  }

  /** The monitor's current picture, coalesced cluster-wide; rejects with PictureError within timeoutMs. */
  async snapshot(monitorId: number, spec: PictureSpec, timeoutMs = DEFAULT_SNAPSHOT_TIMEOUT_MS): Promise<Picture> {
    const started = performance.now();
    try {
      const picture = await withDeadline(this.joinOrMake(monitorId, spec, Date.now() + timeoutMs), timeoutMs);
      this.m.requests.inc({ result: 'ok' });
      this.m.latency.observe((performance.now() - started) / 1000);
      return picture;
    } catch (err) {
      const e = err instanceof PictureError ? err : new PictureError('overloaded', `pictures are unavailable: ${(err as Error).message}`);
      this.m.requests.inc({ result: e.code });
      throw e;
    }
  }

  /**
   * Keeps the derived stream of (monitor, spec, fps) alive while called at
   * least every 2 s; returns its stream key. Rejects with PictureError when
   * the monitor is unknown, its camera down, or no worker runs; a caller that
   * keeps calling gets the stream once the cause is gone.
   */
  async want(monitorId: number, spec: PictureSpec, fps: number): Promise<string> {
    if (!Number.isFinite(fps) || fps <= 0 || fps > MAX_DERIVED_FPS) {
      throw new PictureError('bad_request', `fps must be above 0 and at most ${MAX_DERIVED_FPS}, got ${fps}`);
    }
    const variant = derivedVariant(specVariant(spec), fps);
    const keys = pictureKeys(monitorId, variant);
    // Refused like a snapshot when there is nothing to produce from, so edges can tell their viewers at once.
    await Promise.all([pictureSource(this.redis, monitorId, spec).then((s) => this.newestPacket(monitorId, s.quality)), this.checkCapacity()]);
    await this.redis.set(keys.want, '1', 'PX', WANT_TTL_MS);
    // The same id while a producer runs: adding it again is a no-op; after a producer ended, it starts one.
    await this.derived.add('derive', { monitorId, spec, fps }, {
      jobId: `derive.${monitorId}.${variant}`, removeOnComplete: true, removeOnFail: true,
    });
    return keys.stream;
  }

  async close(): Promise<void> {
    await this.events.close();
    await this.snapshots.close();
    await this.derived.close();
    this.eventsConnection.disconnect();
  }

  private joinOrMake(monitorId: number, spec: PictureSpec, deadline: number): Promise<Picture> {
    const key = pictureKeys(monitorId, specVariant(spec)).pending;
    const running = this.inFlight.get(key);
    if (running) {
      this.m.coalesced.inc({ how: 'in_flight' });
      return running;
    }
    const made = this.make(monitorId, spec, deadline).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, made);
    return made;
  }

  private async make(monitorId: number, spec: PictureSpec, deadline: number): Promise<Picture> {
    const keys = pictureKeys(monitorId, specVariant(spec));
    const [source, cached] = await Promise.all([pictureSource(this.redis, monitorId, spec), this.redis.getBuffer(keys.latest)]);
    const newest = await this.newestPacket(monitorId, source.quality);
    const fresh = cached && decodePicture(cached);
    if (fresh && isCurrent(fresh, newest)) {
      this.m.coalesced.inc({ how: 'cache' });
      return fresh;
    }
    await this.checkCapacity();
    const jobId = `snap.${monitorId}.${specVariant(spec)}.${source.quality}.${newest.id}`;
    // SET NX GET: atomically either this request's job becomes the pending one, or it learns which one is.
    const running = (await this.redis.call('SET', keys.pending, jobId, 'NX', 'GET', 'PX', String(Math.max(1, deadline - Date.now())))) as string | null;
    if (running) {
      this.m.coalesced.inc({ how: 'in_flight' });
      await this.waitFor(running, keys.pending, deadline);
    } else {
      const job = await this.snapshots.add('snapshot', { monitorId, spec, source, frameId: newest.id, deadline }, {
        jobId, removeOnComplete: { age: 10 }, removeOnFail: { age: 10 },
      });
      await this.waitFor(job.id!, keys.pending, deadline);
    }
    const made = await this.redis.getBuffer(keys.latest);
    if (!made) throw new PictureError('timeout', `the picture of monitor ${monitorId} expired before it was read`);
    return decodePicture(made);
  }

  /** Refuses at once, rather than after the timeout, when no worker could take the job. */
  private async checkCapacity(): Promise<void> {
    const [workers, waiting] = await Promise.all([
      this.redis.zcount(WORKER_NODES_KEY, Date.now(), '+inf'),
      this.snapshots.getWaitingCount(),
    ]);
    if (workers === 0) throw new PictureError('overloaded', 'no picture worker is running');
    if (waiting > MAX_WAITING_JOBS) throw new PictureError('overloaded', `${waiting} picture jobs are waiting already`);
  }

  private async waitFor(jobId: string, pendingKey: string, deadline: number): Promise<void> {
    for (;;) {
      const job = await this.snapshots.getJob(jobId);
      if (job) {
        try {
          await job.waitUntilFinished(this.events, Math.max(1, deadline - Date.now()));
          return;
        } catch (err) {
          const reason = (err as Error).message;
          if (reason.startsWith('Job wait')) throw new PictureError('timeout', 'no picture within the time allowed');
          throw PictureError.fromReason(reason);
        }
      }
      // Not queued yet (its requester set `pending` a moment ago), or finished and removed (`pending` gone with it).
      if ((await this.redis.get(pendingKey)) !== jobId) return;
      if (Date.now() >= deadline) throw new PictureError('timeout', 'no picture within the time allowed');
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** The newest video packet of the stream, or why there is none to show. */
  private async newestPacket(monitorId: number, quality: Quality = 'main'): Promise<Newest> {
    const k = monitorKeys(monitorId, quality);
    // The newest entry may be a codec config; the packet is then just before it.
    const entries = (await this.redis.xrevrangeBuffer(k.video, '+', '-', 'COUNT', 2)) as [Buffer, Buffer[]][];
    const entry = entries.find(([, fields]) => fields[0]?.toString() === 'p');
    if (!entry) {
      const known = await this.redis.sismember(MONITORS_KEY, String(monitorId));
      if (!known) throw new PictureError('unknown_monitor', `monitor ${monitorId} is not known`);
      throw new PictureError('camera_down', `monitor ${monitorId} has sent no video`);
    }
    const h = decodeHeader(entry[1][1]);
    if (Date.now() - h.captureTime > CAMERA_SILENT_MS) {
      throw new PictureError('camera_down', `monitor ${monitorId} has sent nothing for ${Math.round((Date.now() - h.captureTime) / 1000)} s`);
    }
    return { quality, id: entry[0].toString(), generation: h.generation, sequence: h.sequence, captureTime: h.captureTime, durationUs: h.duration };
  }
}

/**
 * A cached picture is current when it shows the newest frame of the stream
 * the picture would be made from now, or the one before it (one frame
 * interval). Sequences of main and sub are unrelated: one of the other
 * stream is never current.
 */
function isCurrent(p: Picture, newest: Newest): boolean {
  if (p.quality !== newest.quality || p.generation !== newest.generation) return false;
  return p.sequence >= newest.sequence - 1;
}

function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new PictureError('timeout', `no picture within ${ms} ms`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}
