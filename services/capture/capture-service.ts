/** Runs a MonitorCapture for every monitor assigned to this node by config. */
import type { Config } from '../../shared/config.js';
import { logger } from '../../shared/log.js';
import type { RedisClient } from '../../shared/redis.js';
import { MonitorCapture } from './monitor-capture.js';

const log = logger('capture');

export class CaptureService {
  private readonly captures: MonitorCapture[];

  /** Throws for a monitor whose source can never work, before anything starts. */
  constructor(redis: RedisClient, config: Config) {
    this.captures = config.capture.monitors.map((spec) => new MonitorCapture(redis, spec, config));
  }

  async start(): Promise<void> {
    await Promise.all(this.captures.map((c) => c.start()));
    log.info('capture started', { monitors: this.captures.map((c) => c.spec.id) });
  }

  async stop(): Promise<void> {
    await Promise.all(this.captures.map((c) => c.stop()));
    log.info('capture stopped', { monitors: this.captures.length });
  }
}
