/**
 * `zmcast worker`: takes snapshot jobs and derived-stream jobs from the
 * picture queues, announces itself (picture clients refuse at once when no
 * worker lives), and reports its queues' depth.
 */
import { hostname } from 'node:os';
import { Queue, Worker, type Job } from 'bullmq';
import type { Config } from '../../shared/config.js';
import { logger } from '../../shared/log.js';
import { workerMetrics } from '../../shared/metrics.js';
import { DERIVED_QUEUE, SNAPSHOT_QUEUE, type DerivedJob, type SnapshotJob } from '../../shared/pictures/queues.js';
import { QUEUE_PREFIX, WORKER_NODES_KEY } from '../../shared/redis-keys.js';
import type { RedisClient } from '../../shared/redis.js';
import { blockingConnection } from '../../shared/pictures/blocking-connection.js';
import { DerivedProducer } from './derived-producer.js';
import { Feeds } from './feeds.js';
import { PictureEncoder } from './picture-encoder.js';
import { SnapshotProcessor } from './snapshot-processor.js';

const log = logger('worker');
const QUEUE_STATES = ['waiting', 'active', 'failed', 'delayed'] as const;
const DEPTH_EVERY_MS = 2000;

export class WorkerService {
  readonly node = `${hostname()}:${process.pid}`;
  private readonly feeds: Feeds;
  private readonly encoder = new PictureEncoder();
  private readonly stopping = new AbortController();
  private workers: Worker[] = [];
  /** Ours to close: BullMQ leaves connections it was given open. */
  private connections: RedisClient[] = [];
  private queues: Queue[] = [];
  private timers: NodeJS.Timeout[] = [];
  private readonly m = workerMetrics();

  constructor(private readonly redis: RedisClient, private readonly config: Config['workers']) {
    this.feeds = new Feeds(redis, config.idleStopMs);
  }

  async start(): Promise<void> {
    const snapshots = new SnapshotProcessor(this.redis, this.feeds, this.encoder);
    const derived = new DerivedProducer(this.redis, this.feeds, this.encoder);
    const lockDuration = this.config.lockMs;
    const common = { prefix: QUEUE_PREFIX, lockDuration, stalledInterval: Math.max(500, Math.floor(lockDuration / 2)) };
    this.connections = [blockingConnection(this.redis, 'zmcast-worker-snapshots'), blockingConnection(this.redis, 'zmcast-worker-derived')];
    this.workers = [
      new Worker<SnapshotJob>(SNAPSHOT_QUEUE, (job: Job<SnapshotJob>) => snapshots.process(job), {
        ...common, connection: this.connections[0], concurrency: this.config.concurrency,
      }),
      new Worker<DerivedJob>(DERIVED_QUEUE, (job: Job<DerivedJob>) => derived.process(job, this.stopping.signal), {
        ...common,
        connection: this.connections[1],
        concurrency: this.config.maxDerived,
        // A derived job runs as long as it is wanted: a stall means its worker died, never a reason to give up.
        maxStalledCount: Number.MAX_SAFE_INTEGER,
      }),
    ];
    for (const w of this.workers) {
      w.on('error', (err) => log.error('queue worker error', { queue: w.name, error: err.message }));
      w.on('stalled', (jobId) => log.warn('job of a dead worker taken over', { queue: w.name, job: jobId }));
    }
    this.queues = [SNAPSHOT_QUEUE, DERIVED_QUEUE].map((name) => new Queue(name, { connection: this.redis, prefix: QUEUE_PREFIX }));
    await Promise.all(this.workers.map((w) => w.waitUntilReady()));
    await this.heartbeat();
    this.timers = [
      setInterval(() => {
        this.heartbeat().catch((err: Error) => log.warn('worker heartbeat failed', { error: err.message }));
      }, Math.max(200, Math.floor(lockDuration / 3))),
      setInterval(() => {
        this.reportDepth().catch((err: Error) => log.warn('reading queue depth failed', { error: err.message }));
      }, DEPTH_EVERY_MS),
    ];
    for (const t of this.timers) t.unref();
    await this.reportDepth();
    log.info('picture worker started', { node: this.node, concurrency: this.config.concurrency, max_derived: this.config.maxDerived });
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    // Derived streams end their jobs; a viewer's next want() queues them again for another worker.
    this.stopping.abort();
    await Promise.all(this.workers.map((w) => w.close()));
    for (const c of this.connections) c.disconnect();
    await this.redis.zrem(WORKER_NODES_KEY, this.node).catch(() => 0);
    await Promise.all(this.queues.map((q) => q.close()));
    await this.feeds.close();
    this.encoder.close();
  }

  private async heartbeat(): Promise<void> {
    const now = Date.now();
    await this.redis.zadd(WORKER_NODES_KEY, now + this.config.lockMs, this.node);
    await this.redis.zremrangebyscore(WORKER_NODES_KEY, '-inf', now);
  }

  private async reportDepth(): Promise<void> {
    for (const q of this.queues) {
      const counts = await q.getJobCounts(...QUEUE_STATES);
      for (const state of QUEUE_STATES) this.m.queueJobs.set({ queue: q.name, state }, counts[state] ?? 0);
    }
  }
}
