/**
 * The whole slice in this test process, as `zmcast demo` runs it: capture of
 * the given monitors and an edge, on a Redis database of their own.
 */
import { Redis } from 'ioredis';
import type { ConfigOverrides, MonitorSpec } from '../../shared/config.js';
import { CaptureService } from '../../services/capture/capture-service.js';
import { captureConfig } from '../fixtures/capture-config.js';
import { listenEdge } from './edge.js';
import { freshRedisUrl } from './redis.js';

export interface CaptureAndEdge {
  redis: Redis;
  capture: CaptureService;
  /** The edge's base URL (http://127.0.0.1:port). */
  url: string;
  /** Its admin listener: /metrics and the detailed /readyz. */
  adminUrl: string;
  close(): Promise<void>;
}

export async function startCaptureAndEdge(monitors: MonitorSpec[], overrides: ConfigOverrides = { auth: { mode: 'none' } }): Promise<CaptureAndEdge> {
  const redisUrl = await freshRedisUrl();
  const redis = new Redis(redisUrl);
  const config = captureConfig(redisUrl, monitors, overrides);
  const capture = new CaptureService(redis, config);
  await capture.start();
  const served = await listenEdge(redis, config);
  return {
    redis,
    capture,
    url: served.url,
    adminUrl: served.adminUrl,
    async close() {
      await served.close();
      await capture.stop();
      redis.disconnect();
    },
  };
}
