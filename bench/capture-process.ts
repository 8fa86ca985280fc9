/**
 * The real capture service in a process of its own, for the capture-density
 * scenario: N monitors, each a looped file played at real time and passed
 * through (demuxed, never decoded) to Redis.
 */
import '../shared/polyfills.js';
import { CaptureService } from '../services/capture/capture-service.js';
import { loadConfig, type MonitorSpec } from '../shared/config.js';
import { createRedis } from '../shared/redis.js';
import { captureMetrics } from '../shared/metrics.js';
import { setLogLevel } from '../shared/log.js';
import { serve } from './lib/child.js';

const [redisUrl] = process.argv.slice(2);
setLogLevel('error');
const redis = createRedis(redisUrl, 'bench-capture');
let service: CaptureService | null = null;

async function counter(c: { get(): Promise<{ values: { value: number }[] }> }): Promise<number> {
  return (await c.get()).values.reduce((a, v) => a + v.value, 0);
}

serve({
  start: async (monitors: MonitorSpec[]) => {
    const config = loadConfig({ env: {}, overrides: { capture: { monitors, node: 'bench' } } });
    service = new CaptureService(redis, config);
    await service.start();
  },
  counters: async () => {
    const m = captureMetrics();
    return { packets: await counter(m.packets), dropped: await counter(m.dropped), errors: await counter(m.publishErrors) };
  },
  stop: async () => {
    await service?.stop();
    redis.disconnect();
  },
});
