/**
 * The client library (client/live-client.ts) in Node, with `ws` as its
 * WebSocket, against real edges and a real capture: many monitors on one
 * socket, the token in the subprotocol and refreshed in-band before it
 * expires, and a move to the next edge when one drains, video restarting at a
 * keyframe.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { LiveClient, type ConnectionChange, type SocketConstructor, type StreamCodec, type VideoPacket } from '../../client/live-client.js';
import { mintToken } from '../../shared/auth/index.js';
import type { ConfigOverrides } from '../../shared/config.js';
import { CaptureService } from '../../services/capture/capture-service.js';
import { captureConfig } from '../fixtures/capture-config.js';
import { startEdge, type EdgeRig } from '../helpers/edge.js';
import { sleep, until } from '../helpers/wait.js';

const SECRET = 'live-client-test-secret-0123456789abcdef';
const AUTH: ConfigOverrides = {
  auth: { mode: 'config', secret: SECRET, expiryWarningMs: 3_000, users: [{ name: 'viewer', monitors: [1, 2], enabled: true, tokensNotBefore: 0 }] },
};
const MONITORS = [
  { id: 1, name: 'One', source: 'synthetic:?size=320x240&fps=20&gop=20' },
  { id: 2, name: 'Two', source: 'synthetic:?size=320x240&fps=20&gop=20' },
];

let first: EdgeRig;
let second: EdgeRig;
let capture: CaptureService;
let captureRedis: Redis;
let drained = false;

beforeAll(async () => {
  first = await startEdge(AUTH);
  captureRedis = new Redis(first.redisUrl);
  capture = new CaptureService(captureRedis, captureConfig(first.redisUrl, MONITORS, AUTH));
  await capture.start();
  second = await startEdge(AUTH, first.redisUrl);
  await until(async () => (await first.redis.hget('zmcast:{m:2}:meta', 'kf')) !== null, 15_000, 'keyframes');
});

afterAll(async () => {
  if (!drained) await first?.close();
  await second?.close();
  await capture?.stop();
  captureRedis?.disconnect();
});

function record(client: LiveClient) {
  // packetsAtState[i]: how many packets had arrived when states[i] came.
  const seen = { codecs: [] as StreamCodec[], packets: [] as VideoPacket[], states: [] as ConnectionChange[], packetsAtState: [] as number[], refreshes: 0 };
  client.on('codec', (c) => seen.codecs.push(c));
  client.on('packet', (p) => seen.packets.push(p));
  client.on('state', (s) => (seen.states.push(s), seen.packetsAtState.push(seen.packets.length)));
  client.on('auth', () => seen.refreshes++);
  return seen;
}

describe('client library (Node, ws)', () => {
  it('carries many monitors on one socket with a subprotocol token, refreshed in-band so the connection outlives it', async () => {
    let minted = 0;
    // Five-second tokens: the edge warns after two, and closes at five unless refreshed.
    const client = new LiveClient({ urls: first.url, WebSocket: WebSocket as unknown as SocketConstructor, getToken: () => (minted++, mintToken('viewer', SECRET, 5)) });
    const seen = record(client);
    client.subscribeStream(1);
    client.subscribeStream(2);
    await until(() => [1, 2].every((id) => seen.packets.some((p) => p.header.monitorId === id)), 10_000, 'packets of both monitors');
    for (const id of [1, 2]) {
      expect(seen.codecs.find((c) => c.monitor_id === id)).toMatchObject({ codec: 'h264', width: 320, height: 240, quality: 'main' });
      expect(seen.packets.find((p) => p.header.monitorId === id)!.header.keyframe).toBe(true);
    }
    await sleep(8_000);
    const recent = seen.packets.filter((p) => p.receivedAt > Date.now() - 1_000);
    expect(seen.states.map((s) => s.state)).toEqual(['open']);
    expect(seen.refreshes).toBeGreaterThanOrEqual(2);
    expect(minted).toBe(1 + seen.refreshes);
    expect(new Set(recent.map((p) => p.header.monitorId))).toEqual(new Set([1, 2]));
    await client.close();
    expect(client.state).toBe('closed');
  });

  it('moves to the next edge when its edge drains, re-sends its subscriptions and restarts video at a keyframe', async () => {
    const client = new LiveClient({ urls: [first.url, second.url], WebSocket: WebSocket as unknown as SocketConstructor, token: await mintToken('viewer', SECRET, 600) });
    const seen = record(client);
    client.subscribeStream(1, { quality: 'sub' });
    await until(() => seen.packets.length > 10, 10_000, 'video from the first edge');
    drained = true;
    await first.close(); // drains: close 1012
    await until(() => seen.states.length === 3 && seen.packets.length > seen.packetsAtState[2] + 10, 10_000, 'video from the second edge');
    // Frames the first edge sent before its close may still be read after close() resolves: count from the new open.
    const lostAt = seen.packetsAtState[2];
    expect(seen.states.map((s) => s.state)).toEqual(['open', 'reconnecting', 'open']);
    expect(seen.states[1]).toMatchObject({ code: 1012, url: second.url });
    expect(seen.states[2].url).toBe(second.url);
    expect(seen.codecs).toHaveLength(2);
    expect(seen.packets[lostAt].header.keyframe).toBe(true);
    expect(client.reconnects).toBe(1);
    await client.close();
  });
});
