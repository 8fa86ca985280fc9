/**
 * The whole slice with real parts: synthetic camera → capture → Redis →
 * edge → WebSocket clients, and what they receive must decode.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { CaptureService } from '../../services/capture/capture-service.js';
import { ZmcastClient, type ReceivedPacket } from '../../client/zmcast-client.js';
import { configFromJson, type CodecConfig } from '../../shared/codec.js';
import { freshRedisUrl } from '../helpers/redis.js';
import { captureConfig } from '../fixtures/capture-config.js';
import { probeAnnexB } from '../fixtures/capture-stream.js';
import { listenEdge } from '../helpers/edge.js';
import { sleep, until } from '../helpers/wait.js';

let redis: Redis;
let capture: CaptureService;
let served: Awaited<ReturnType<typeof listenEdge>>;
let url: string;

beforeAll(async () => {
  const redisUrl = await freshRedisUrl();
  redis = new Redis(redisUrl);
  const config = captureConfig(redisUrl, [{ id: 1, name: 'Lobby', source: 'synthetic:?size=320x240&fps=25&gop=25' }], {
    auth: { mode: 'none' },
  });
  capture = new CaptureService(redis, config);
  await capture.start();
  served = await listenEdge(redis, config);
  url = served.url;
});

afterAll(async () => {
  await served?.close();
  await capture?.stop();
  redis?.disconnect();
});

async function watchFor(ms: number): Promise<{ config: CodecConfig; packets: ReceivedPacket[]; firstFrameMs: number }> {
  const client = await ZmcastClient.connect(url);
  const packets: ReceivedPacket[] = [];
  let config: CodecConfig | null = null;
  const t0 = performance.now();
  let firstFrameMs = -1;
  client.on('codec', (c) => (config ??= configFromJson(c)));
  client.on('packet', (p) => {
    if (firstFrameMs < 0) firstFrameMs = performance.now() - t0;
    packets.push(p);
  });
  client.subscribeStream(1, 'h264');
  await sleep(ms);
  await client.close();
  return { config: config!, packets, firstFrameMs };
}

describe('live view end to end', () => {
  it('gives two viewers a keyframe-first H.264 stream that ffprobe decodes without errors', async () => {
    await until(async () => (await redis.hget('zmcast:{m:1}:meta', 'kf')) !== null, 15_000, 'first keyframe');
    const [a, b] = await Promise.all([watchFor(3000), watchFor(3000)]);
    for (const v of [a, b]) {
      expect(v.config).toMatchObject({ codec: 'h264', width: 320, height: 240 });
      expect(v.packets[0].keyframe).toBe(true);
      expect(v.packets.length).toBeGreaterThan(50);
      const probe = probeAnnexB(v.config, v.packets);
      expect(probe.errors).toBe('');
      expect(probe.frames).toBe(v.packets.length);
    }
  });

  it('starts a late joiner at the latest keyframe: its first frame decodes at once', async () => {
    await sleep(500); // join mid-GOP
    const late = await watchFor(1500);
    expect(late.packets[0].keyframe).toBe(true);
    expect(late.firstFrameMs).toBeLessThan(1000);
    const probe = probeAnnexB(late.config, late.packets.slice(0, 1));
    expect(probe.errors).toBe('');
    expect(probe.frames).toBe(1);
  });

  it('reports capture→send latency and clients in /metrics', async () => {
    const text = await (await fetch(`${served.adminUrl}/metrics`)).text();
    expect(text).toMatch(/zmcast_edge_capture_to_send_seconds_count\{monitor="1"\} [1-9]/);
    expect(text).toMatch(/zmcast_capture_packets_total\{monitor="1"\} [1-9]/);
    expect(text).toContain('zmcast_edge_clients');
  });
});
