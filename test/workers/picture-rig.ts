/**
 * Capture of synthetic monitors, a picture worker and picture clients, all in
 * the test process on a Redis database of their own: what `zmcast demo` runs.
 * Call pictureRig() at the top of a file; it stops everything after each test.
 */
import { afterEach } from 'vitest';
import { CaptureService } from '../../services/capture/capture-service.js';
import { WorkerService } from '../../services/workers/worker-service.js';
import type { Config, MonitorSpec } from '../../shared/config.js';
import { PictureClient } from '../../shared/pictures/picture-client.js';
import { monitorKeys } from '../../shared/redis-keys.js';
import { createRedis, type RedisClient } from '../../shared/redis.js';
import { captureConfig } from '../fixtures/capture-config.js';
import { freshRedisUrl } from '../helpers/redis.js';
import { until } from '../helpers/wait.js';

export interface Rig {
  url: string;
  redis: RedisClient;
  config: Config;
  /** The rig's capture (to change its monitors with apply()). */
  capture: CaptureService;
  /** Starts an in-process worker on the rig's Redis. */
  worker(overrides?: Partial<Config['workers']>): Promise<WorkerService>;
  /** A picture client as an edge has one (each has its own connections). */
  client(): PictureClient;
  /** Waits until the monitor has published `n` packets. */
  packets(monitorId: number, n: number): Promise<void>;
  /**
   * Renews want()s every second, as an edge does while anyone subscribes;
   * stop() waits for a renewal in flight and throws the first that failed.
   */
  keepWanting(want: () => Promise<unknown>): { stop(): Promise<void> };
}

export function pictureRig() {
  const stops: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  });

  return async function start(monitors: MonitorSpec[]): Promise<Rig> {
    const url = await freshRedisUrl();
    const redis = createRedis(url, 'test');
    stops.push(async () => redis.disconnect());
    const config = captureConfig(url, monitors, { workers: { idleStopMs: 2000, lockMs: 2000 } });
    const capture = new CaptureService(redis, config);
    await capture.start();
    stops.push(() => capture.stop());
    return {
      url,
      redis,
      config,
      capture,
      async worker(overrides = {}) {
        const conn = createRedis(url, 'test-worker');
        const w = new WorkerService(conn, { ...config.workers, ...overrides });
        await w.start();
        stops.push(async () => {
          await w.stop();
          conn.disconnect();
        });
        return w;
      },
      client() {
        const conn = createRedis(url, 'test-pictures');
        const c = new PictureClient(conn);
        stops.push(async () => {
          await c.close();
          conn.disconnect();
        });
        return c;
      },
      keepWanting(want) {
        let failure: Error | null = null;
        let inFlight: Promise<unknown> = Promise.resolve();
        const timer = setInterval(() => {
          inFlight = want().catch((err: Error) => (failure ??= err));
        }, 1000);
        const stop = async () => {
          clearInterval(timer);
          await inFlight;
          if (failure) throw new Error(`want() failed: ${failure.message}`);
        };
        stops.push(() => stop().catch(() => undefined));
        return { stop };
      },
      async packets(monitorId, n) {
        await until(async () => (await redis.xlen(monitorKeys(monitorId).video)) >= n, 20_000, `${n} packets of monitor ${monitorId}`);
      },
    };
  };
}
