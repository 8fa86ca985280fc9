/**
 * Fault drill for pictures: Redis restarted empty under a real capture, a
 * real picture worker, a real edge and a live MJPEG viewer. The worker's
 * queues, the derived stream's job and every picture key are gone; the
 * viewer must get pictures again without doing anything, and snapshots must
 * work again.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { until } from '../helpers/wait.js';
import { DrillRedis, cameras, getJson, startCapture, startEdge, zmcast, type Zmcast } from './rig.js';

let redis: DrillRedis;
let capture: Zmcast;
let worker: Zmcast;
let edge: Awaited<ReturnType<typeof startEdge>>;

beforeAll(async () => {
  redis = await DrillRedis.start();
  capture = startCapture(redis.url, cameras([1]), { ZMCAST_STATUS_INTERVAL_MS: '500' });
  worker = zmcast(['worker'], { ZMCAST_REDIS_URL: redis.url, ZMCAST_WORKER_METRICS_PORT: '0', ZMCAST_WORKER_LOCK_MS: '2000' });
  edge = await startEdge(redis.url);
  await until(async () => (await getJson<unknown[]>(`${edge.url}/monitors`)).body.length === 1, 20_000, 'monitor 1 registered');
});

afterAll(async () => {
  await edge?.kill();
  await worker?.kill();
  await capture?.kill();
});

/** Counts the parts of a multipart MJPEG response as they arrive. */
function followParts(url: string): { parts: () => number; stop: () => void } {
  const abort = new AbortController();
  let parts = 0;
  const reading = (async () => {
    const res = await fetch(url, { signal: abort.signal });
    if (!res.ok || !res.body) throw new Error(`MJPEG answered ${res.status}`);
    const decoder = new TextDecoder('latin1');
    for await (const chunk of res.body) parts += decoder.decode(chunk).split('--ZoneMinderFrame').length - 1;
  })().catch((err: Error) => {
    if (err.name !== 'AbortError') throw err;
  });
  return {
    parts: () => parts,
    stop: () => {
      abort.abort();
      reading.catch(() => undefined);
    },
  };
}

describe('fault drill: Redis restarted empty under pictures', () => {
  it('an MJPEG viewer gets pictures again by itself, and snapshots work again', async () => {
    await until(async () => (await fetch(`${edge.url}/monitors/1/snapshot.jpg?width=160`)).status === 200, 30_000, 'a first snapshot');
    const mjpeg = followParts(`${edge.url}/monitors/1/mjpeg?maxfps=5&width=160`);
    try {
      await until(() => mjpeg.parts() >= 5, 30_000, 'MJPEG parts before the drill');
      await redis.kill();
      await redis.launch();
      const restarted = Date.now();
      const before = mjpeg.parts();
      await until(() => mjpeg.parts() >= before + 5, 60_000, 'MJPEG parts after Redis restarted empty');
      const resumedMs = Date.now() - restarted;
      await until(async () => (await fetch(`${edge.url}/monitors/1/snapshot.jpg?width=160`)).status === 200, 30_000, 'a snapshot after the restart');
      const snapshotMs = Date.now() - restarted;
      console.log(`drill pictures redis-restart: MJPEG resumed after ${resumedMs} ms, snapshots after ${snapshotMs} ms`);
    } finally {
      mjpeg.stop();
    }
  });
});
