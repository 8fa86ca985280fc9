import { describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { CaptureService } from '../../services/capture/capture-service.js';
import { MONITOR_NAMES_KEY, MONITORS_KEY, monitorKeys } from '../../shared/redis-keys.js';
import { captureConfig } from '../fixtures/capture-config.js';
import { captureOnRedis } from '../fixtures/capture-on-redis.js';
import { packetsOf, readVideoStream } from '../fixtures/capture-stream.js';
import { until } from '../helpers/wait.js';

const captures = captureOnRedis();

describe('capture service', () => {
  it('registers and captures every configured monitor, and stops them all', async () => {
    const { service, redis: r } = await captures.service([
      { id: 61, name: 'Garage', source: 'synthetic:?size=160x120&fps=10' },
      { id: 62, name: 'Garden', source: 'synthetic:?size=160x120&fps=10' },
    ]);
    await service.start();

    expect((await r.smembers(MONITORS_KEY)).sort()).toEqual(['61', '62']);
    expect(await r.hgetall(MONITOR_NAMES_KEY)).toEqual({ 61: 'Garage', 62: 'Garden' });
    for (const id of [61, 62]) {
      await until(async () => packetsOf(await readVideoStream(r, id)).length >= 3, 15_000, `packets of monitor ${id}`);
    }

    await service.stop();
    for (const id of [61, 62]) {
      expect(JSON.parse((await r.get(monitorKeys(id).status))!).state).toBe('stopped');
    }
  });

  it('refuses a monitor whose source can never work before starting any', () => {
    expect(() => new CaptureService(new Redis({ lazyConnect: true }), captureConfig('', [
      { id: 1, name: 'Good', source: 'synthetic:' },
      { id: 2, name: 'Bad', source: 'synthetic:?codec=mjpeg' },
    ]))).toThrow(/codec must be h264 or h265/);
  });
});
