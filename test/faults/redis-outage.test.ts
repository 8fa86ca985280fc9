/**
 * Fault drills: Redis restarted empty, and Redis paused for 10 s, under a
 * real capture process, a real edge process and a live viewer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZmcastClient, type ReceivedPacket } from '../../client/zmcast-client.js';
import type { CodecReply, DroppedReply, StatusReply } from '../../shared/protocol.js';
import { sleep, until } from '../helpers/wait.js';
import { STALE_AFTER_MS } from '../../services/edge/video-channel.js';
import { DrillRedis, cameras, getJson, getText, startCapture, startEdge, type Zmcast } from './rig.js';

interface Watched {
  client: ZmcastClient;
  packets: ReceivedPacket[];
  codecs: CodecReply[];
  dropped: DroppedReply[];
  /** How many packets had arrived when each `dropped` notice came: the next one must be a keyframe. */
  droppedAt: number[];
  errors: string[];
}

async function watchMonitor(url: string, id: number): Promise<Watched> {
  const client = await ZmcastClient.connect(url);
  const w: Watched = { client, packets: [], codecs: [], dropped: [], droppedAt: [], errors: [] };
  client.on('packet', (p) => w.packets.push(p));
  client.on('codec', (c) => w.codecs.push(c));
  client.on('dropped', (d) => {
    w.dropped.push(d);
    w.droppedAt.push(w.packets.length);
  });
  client.on('errorReply', (e) => w.errors.push(e.code));
  client.subscribeStream(id);
  await until(() => w.packets.length >= 10, 20_000, 'video before the drill');
  return w;
}

let redis: DrillRedis;
let capture: Zmcast;
let edge: Awaited<ReturnType<typeof startEdge>>;

beforeAll(async () => {
  redis = await DrillRedis.start();
  capture = startCapture(redis.url, cameras([1]), { ZMCAST_STATUS_INTERVAL_MS: '500' });
  edge = await startEdge(redis.url);
  await until(async () => (await getJson<unknown[]>(`${edge.url}/monitors`)).body.length === 1, 20_000, 'monitor 1 registered');
});

afterAll(async () => {
  await edge?.kill();
  await capture?.kill();
});

describe('fault drill: Redis restarted empty', () => {
  it('heals the registry and codec config, tells viewers the history was lost, and serves new viewers at once', async () => {
    const old = await watchMonitor(edge.url, 1);
    const epochBefore = old.codecs.at(-1)!.epoch;
    expect(epochBefore).toMatch(/^[0-9a-f]{16}$/);

    await redis.kill();
    const down = await getText(`${edge.url}/readyz`);
    expect(down.status).toBe(503);
    await redis.launch();
    const restarted = Date.now();

    await until(async () => (await getJson<{ id: number }[]>(`${edge.url}/monitors`)).body.some((m) => m.id === 1), 10_000, 'monitor 1 listed again');
    const listedMs = Date.now() - restarted;
    await until(async () => (await getText(`${edge.url}/readyz`)).status === 200, 10_000, 'edge ready again');

    // A new viewer is served: never unknown_monitor for a monitor capture publishes.
    const fresh = await watchMonitor(edge.url, 1);
    expect(fresh.errors).toEqual([]);
    expect(fresh.packets[0].keyframe).toBe(true);
    const freshMs = Date.now() - restarted;

    // The viewer that stayed: told, a new epoch, and video again from a keyframe.
    const seen = old.packets.length;
    await until(() => old.packets.length > seen + 10, 10_000, 'old viewer to get video again');
    const resumedMs = Date.now() - restarted;
    const epochAfter = old.codecs.at(-1)!.epoch;
    expect(epochAfter).not.toBe(epochBefore);
    const told = old.dropped.findIndex((d) => d.reason === 'history_lost');
    expect(told).toBeGreaterThanOrEqual(0);
    // Video after the notice starts at a keyframe (capture may re-publish the GOP it held, captured before
    // the restart), and so does video after every later notice.
    expect(old.packets[old.droppedAt[told]].keyframe).toBe(true);
    for (const at of old.droppedAt) if (at < old.packets.length) expect(old.packets[at].keyframe).toBe(true);

    // Loss and recovery of Redis are logged once each, as JSON.
    const edgeLogs = edge.logs().map((l) => l.msg);
    expect(edgeLogs).toContain('redis connection lost; reconnecting');
    expect(edgeLogs).toContain('redis connection restored');
    console.log(`drill redis-restart: listed again after ${listedMs} ms, new viewer served after ${freshMs} ms, old viewer resumed after ${resumedMs} ms`);
    expect(listedMs).toBeLessThan(5000);
    expect(resumedMs).toBeLessThan(8000);
    await old.client.close();
    await fresh.client.close();
  });
});

describe('fault drill: Redis paused for 10 s', () => {
  it('answers within a bound while Redis is stuck, then jumps viewers to live video and says what they missed', async () => {
    const w = await watchMonitor(edge.url, 1);
    const status = await ZmcastClient.connect(edge.url);
    const statuses: StatusReply[] = [];
    status.on('status', (s) => statuses.push(s));

    redis.pause();
    const pausedAt = Date.now();
    await sleep(2500);
    const monitors = await getJson<{ id: number; stale?: boolean }[]>(`${edge.url}/monitors`);
    expect(monitors.ms).toBeLessThan(3000);
    expect(monitors.body).toEqual([expect.objectContaining({ id: 1, stale: true })]);
    const ready = await getText(`${edge.url}/readyz`);
    expect(ready.ms).toBeLessThan(3000);
    expect(ready.status).toBe(503);
    const asked = performance.now();
    status.send({ command: 'status', monitor_id: 1 });
    const [answer] = await status.next('status', 3000);
    expect(performance.now() - asked).toBeLessThan(3000);
    expect(answer.stale).toBe(true);

    await sleep(10_000 - (Date.now() - pausedAt));
    const seen = w.packets.length;
    redis.resume();
    const resumedAt = Date.now();
    await until(() => w.packets.some((p, i) => i >= seen && p.captureTime >= resumedAt), 10_000, 'live video after the pause');
    const liveMs = Date.now() - resumedAt;
    await sleep(2000);

    const after = w.packets.slice(seen);
    // No stale backlog: nothing older than the edge's staleness bound (2 s) is delivered
    // after the pause, and two seconds later the viewer is back at the live edge.
    const worst = Math.max(...after.map((p) => p.receivedAt - p.captureTime));
    const latest = Math.max(...after.slice(-10).map((p) => p.receivedAt - p.captureTime));
    expect(w.dropped.some((d) => (d.reason === 'stale' || d.reason === 'upstream') && d.count > 0)).toBe(true);
    expect(after[0].keyframe).toBe(true);
    expect(worst).toBeLessThan(STALE_AFTER_MS + 1000);
    expect(latest).toBeLessThan(300);
    console.log(`drill redis-pause: live video ${liveMs} ms after the pause, worst latency after it ${worst} ms, ${latest} ms two seconds later, dropped notices ${JSON.stringify(w.dropped)}`);
    expect(liveMs).toBeLessThan(3000);
    await until(async () => (await getText(`${edge.url}/readyz`)).status === 200, 5000, 'ready again');
    await w.client.close();
    await status.close();
  });
});
