/**
 * A real RTSP camera (GStreamer) all the way to a viewer: the viewer decodes
 * what it gets, sees the outage as events, and after the camera returns
 * receives a new codec message with a higher generation, then a keyframe.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { CaptureService } from '../../services/capture/capture-service.js';
import { ZmcastClient, type ReceivedPacket } from '../../client/zmcast-client.js';
import { configFromJson } from '../../shared/codec.js';
import type { CodecReply, EventReply } from '../../shared/protocol.js';
import { freshRedisUrl } from '../helpers/redis.js';
import { captureConfig } from '../fixtures/capture-config.js';
import { probeAnnexB } from '../fixtures/capture-stream.js';
import { startRtspCamera, type RtspCamera } from '../fixtures/rtsp-camera.js';
import { listenEdge } from '../helpers/edge.js';
import { until } from '../helpers/wait.js';

let camera: RtspCamera;
let redis: Redis;
let capture: CaptureService;
let served: Awaited<ReturnType<typeof listenEdge>>;
let client: ZmcastClient;

beforeAll(async () => {
  camera = await startRtspCamera({ gop: 25 });
  const redisUrl = await freshRedisUrl();
  redis = new Redis(redisUrl);
  const config = captureConfig(redisUrl, [{ id: 5, name: 'Gate', source: camera.url }], { auth: { mode: 'none' } });
  capture = new CaptureService(redis, config);
  await capture.start();
  served = await listenEdge(redis, config);
  client = await ZmcastClient.connect(served.url);
});

afterAll(async () => {
  await client?.close();
  await served?.close();
  await capture?.stop();
  await camera?.stop();
  redis?.disconnect();
});

describe('RTSP camera to viewer', () => {
  it('delivers a decodable stream, reports the outage and resumes with a new generation', async () => {
    const packets: ReceivedPacket[] = [];
    const codecs: CodecReply[] = [];
    const events: EventReply[] = [];
    client.on('packet', (p) => packets.push(p));
    client.on('codec', (c) => codecs.push(c));
    client.on('event', (e) => events.push(e));
    client.subscribeEvents(5);
    await client.next('ack');
    client.subscribeStream(5, 'h264');
    await until(() => packets.length >= 40, 20_000, '40 packets from the camera');

    const first = configFromJson(codecs[0]);
    expect(first).toMatchObject({ codec: 'h264', width: 320, height: 240 });
    expect(packets[0].keyframe).toBe(true);
    const probe = probeAnnexB(first, packets.filter((p) => p.generation === first.generation));
    expect(probe.errors).toBe('');

    await camera.stop();
    await until(() => events.some((e) => e.event === 'connection_failed'), 20_000, 'connection_failed');
    await camera.restart();
    await until(() => events.some((e) => e.event === 'connection_restored'), 30_000, 'connection_restored');
    await until(() => packets.some((p) => p.generation > first.generation), 20_000, 'packets of the new generation');

    const second = codecs[codecs.length - 1];
    expect(second.generation).toBeGreaterThan(first.generation);
    const newGen = packets.filter((p) => p.generation === second.generation);
    expect(newGen[0].keyframe).toBe(true);
    expect(newGen[0].sequence).toBe(0);
  });
});
