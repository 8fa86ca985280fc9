/**
 * Fault drill: Redis at maxmemory with noeviction. Capture drops and counts,
 * retention still frees memory (trimming does not depend on a write Redis
 * refuses), status says so, edges serve what exists, and everything resumes
 * by itself once Redis takes writes again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZmcastClient, type ReceivedPacket } from '../../client/zmcast-client.js';
import type { StatusReply } from '../../shared/protocol.js';
import { freePort } from '../../shared/redis-locator.js';
import { sleep, until } from '../helpers/wait.js';
import { DrillRedis, cameras, getJson, getText, startCapture, startEdge, type Zmcast } from './rig.js';

let redis: DrillRedis;
let edge: Awaited<ReturnType<typeof startEdge>>;
let capture: Zmcast;
let metricsPort: number;

beforeAll(async () => {
  redis = await DrillRedis.start(['--maxmemory-policy', 'noeviction']);
  metricsPort = await freePort();
  // Retention far beyond what fits: without the full-Redis handling, memory would never come back.
  capture = startCapture(redis.url, cameras([1, 2], 'size=320x240&fps=25&gop=25&bitrate=1500000'), {
    ZMCAST_RETENTION_GOPS: '200', ZMCAST_RETENTION_SECONDS: '3600', ZMCAST_STATUS_INTERVAL_MS: '500', ZMCAST_RETENTION_FULL_HOLD_SECONDS: '8',
    ZMCAST_CAPTURE_METRICS_PORT: String(metricsPort), ZMCAST_EDGE_HOST: '127.0.0.1',
  });
  edge = await startEdge(redis.url);
});

afterAll(async () => {
  await capture?.kill();
  await edge?.kill();
  await redis?.kill();
});

/** Paced, so polling stays under the edge's command rate limit. */
async function statusOf(client: ZmcastClient): Promise<StatusReply> {
  await sleep(100);
  client.send({ command: 'status', monitor_id: 1 });
  return (await client.next('status'))[0];
}

const usedMemory = async (r: ReturnType<DrillRedis['client']>) => Number(/used_memory:(\d+)/.exec(await r.info('memory'))![1]);

describe('fault drill: Redis full (maxmemory, noeviction)', () => {
  it('drops and counts, frees memory, tells the truth in status, keeps serving, and recovers by itself', async () => {
    const admin = redis.client();
    // Subscribing before capture registered the monitor would be answered unknown_monitor (on a loaded machine capture starts late).
    await until(async () => (await getJson<{ id: number }[]>(`${edge.url}/monitors`)).body.some((m) => m.id === 1), 20_000, 'monitor 1 registered');
    const viewer = await ZmcastClient.connect(edge.url);
    const packets: ReceivedPacket[] = [];
    viewer.on('packet', (p) => packets.push(p));
    viewer.subscribeStream(1);
    await until(() => packets.length >= 25, 20_000, 'video before the drill');

    const limit = (await usedMemory(admin)) + 2 * 1024 * 1024;
    await admin.config('SET', 'maxmemory', String(limit));
    const statuses: StatusReply[] = [];
    const fullAt = Date.now();
    await until(async () => {
      const s = await statusOf(viewer);
      statuses.push(s);
      return s.publishing === 'redis_full';
    }, 30_000, 'status to say Redis is full');
    const toldMs = Date.now() - fullAt;

    // Memory stays at the limit (the scripts that may pass it are a few hundred bytes each).
    await sleep(5000);
    expect(await usedMemory(admin)).toBeLessThan(limit + 512 * 1024);
    // Capture is alive and says so once per monitor, not for every refused packet.
    expect(capture.child.exitCode).toBeNull();
    const refusals = capture.logs().filter((l) => l.msg === 'redis refused writes; dropping video until the next keyframe it takes');
    expect(refusals.length).toBeLessThanOrEqual(6);
    const metrics = await getText(`http://127.0.0.1:${metricsPort}/metrics`);
    // Every refused write is counted; the packets skipped after it until the next keyframe too (none when
    // the refused one was the last of its GOP), under reason="redis_full".
    expect(metrics.body).toMatch(/zmcast_capture_publish_errors_total\{monitor="1",code="OOM"\} [1-9]/);
    expect(metrics.body).toMatch(/zmcast_capture_redis_full 1/);
    expect(metrics.body).not.toMatch(/zmcast_capture_dropped_packets_total\{monitor="\d+",reason="(backlog|redis_error)"\}/);
    // With one GOP per monitor kept, what fits is still published and served.
    const seen = packets.length;
    await until(() => packets.length > seen + 25, 10_000, 'video while Redis is near full');

    await admin.config('SET', 'maxmemory', '0');
    const freedAt = Date.now();
    // Retention stays cut for retention.fullHoldSeconds (8 s here), then the full window is back.
    await until(async () => {
      const s = await statusOf(viewer);
      return s.publishing === 'ok' && s.connected;
    }, 20_000, 'status to say publishing is ok again');
    console.log(`drill redis-full: status said redis_full after ${toldMs} ms; ok again ${Date.now() - freedAt} ms after memory was freed; ${refusals.length} warning lines`);
    admin.disconnect();
    await viewer.close();
  });
});
