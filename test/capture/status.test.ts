import { describe, expect, it } from 'vitest';
import type { StatusRecord } from '../../shared/status-record.js';
import { monitorKeys } from '../../shared/redis-keys.js';
import { captureOnRedis } from '../fixtures/capture-on-redis.js';
import { until } from '../helpers/wait.js';

const ID = 51;
const captures = captureOnRedis();

describe('capture status record', () => {
  it('is refreshed with a TTL, measures fps and kbps per interval, and reads stopped after stop()', async () => {
    const key = monitorKeys(ID).status;
    const { capture, redis: r } = await captures.monitor({ id: ID, name: 'Porch', source: 'synthetic:?size=160x120&fps=20' },
      { capture: { statusIntervalMs: 250, statusTtlMs: 1500 } });
    await capture.start();

    // A few intervals in, the rate of the last one is the camera's.
    const status = await until(async () => {
      const s = JSON.parse((await r.get(key)) ?? 'null') as StatusRecord | null;
      return s && s.state === 'connected' && s.packets >= 15 ? s : undefined;
    }, 15_000, 'a connected status with a measured rate');
    expect(status).toMatchObject({ monitor_id: ID, monitor_name: 'Porch', capture_node: 'test-node', generation: 1 });
    expect(status.fps).toBeGreaterThan(15);
    expect(status.fps).toBeLessThan(25);
    expect(status.kbps).toBeGreaterThan(0);
    expect(Date.now() - status.last_packet_time!).toBeLessThan(1000);
    const ttl = await r.pttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(1500);

    await capture.stop();
    const stopped = JSON.parse((await r.get(key))!) as StatusRecord;
    expect(stopped).toMatchObject({ state: 'stopped', fps: 0, kbps: 0 });
    // No refresh after stop: the record expires with its TTL.
    expect(await r.pttl(key)).toBeGreaterThan(0);
    await until(async () => (await r.exists(key)) === 0, 3000, 'the status to expire');
  });
});
