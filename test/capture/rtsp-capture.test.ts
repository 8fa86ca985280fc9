import { afterEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { MonitorCapture } from '../../services/capture/monitor-capture.js';
import { freshRedisUrl } from '../helpers/redis.js';
import { captureConfig } from '../fixtures/capture-config.js';
import { configsOf, packetsOf, probeAnnexB, readEvents, readMetaConfig, readVideoStream } from '../fixtures/capture-stream.js';
import { metricValue } from '../helpers/metrics.js';
import { sleep, until } from '../helpers/wait.js';
import { takeLease } from '../fixtures/lease.js';
import { startRtspCamera, type RtspCamera, type RtspCameraOptions } from '../fixtures/rtsp-camera.js';

const ID = 21;
let camera: RtspCamera | null = null;
let capture: MonitorCapture | null = null;
let redis: Redis | null = null;

afterEach(async () => {
  await capture?.stop();
  await camera?.stop();
  redis?.disconnect();
  capture = camera = redis = null;
});

async function captureCamera(cam: RtspCameraOptions = {}, rtspTimeoutMs = 2000) {
  camera = await startRtspCamera(cam);
  const url = await freshRedisUrl();
  redis = new Redis(url);
  capture = new MonitorCapture(redis, { id: ID, name: 'Door', source: camera.url }, captureConfig(url, [], { capture: { rtspTimeoutMs } }), await takeLease(redis, ID));
  await capture.start();
  return { camera, redis, capture };
}

const eventNames = async (r: Redis) => (await readEvents(r, ID)).map((e) => e.event);

async function waitForEvent(r: Redis, event: string, count = 1, timeoutMs = 15_000) {
  await until(async () => (await eventNames(r)).filter((e) => e === event).length >= count, timeoutMs, `${count}× ${event}`);
}

describe('RTSP capture', () => {
  it('passes a real RTSP camera through to Redis without decoding, and the packets decode', async () => {
    const { redis, capture } = await captureCamera();
    await until(async () => packetsOf(await readVideoStream(redis, ID)).length >= 30, 15_000, '30 packets');
    await capture.stop();

    const entries = await readVideoStream(redis, ID);
    const [config] = configsOf(entries);
    expect(config).toMatchObject({ codec: 'h264', width: 320, height: 240, generation: 1 });
    expect(config.codecString).toMatch(/^avc1\./);
    const packets = packetsOf(entries);
    expect(packets[0].keyframe).toBe(true);
    expect(packets.map((p) => p.sequence)).toEqual(packets.map((_, i) => i));
    expect(probeAnnexB(config, packets)).toEqual({ codec: 'h264', width: 320, height: 240, frames: packets.length, errors: '' });

    const events = await readEvents(redis, ID);
    expect(events.map((e) => e.event)).toEqual(['connecting', 'connected']);
    // Opening waits for a keyframe to learn the stream (GOP 1 s here).
    expect(events[1].time - events[0].time).toBeLessThan(4000);
  });

  it('passes H.265 through as well', async () => {
    const { redis, capture } = await captureCamera({ codec: 'h265', gop: 10 });
    await until(async () => packetsOf(await readVideoStream(redis, ID)).length >= 12, 15_000, '12 packets');
    await capture.stop();
    const entries = await readVideoStream(redis, ID);
    const [config] = configsOf(entries);
    expect(config).toMatchObject({ codec: 'h265', width: 320, height: 240 });
    expect(config.codecString).toMatch(/^hev1\.1\./);
    const packets = packetsOf(entries);
    expect(probeAnnexB(config, packets)).toEqual({ codec: 'hevc', width: 320, height: 240, frames: packets.length, errors: '' });
  });

  it('reports a killed camera once, reconnects when it is back on the same port, and raises the generation', async () => {
    const { camera, redis } = await captureCamera();
    await until(async () => packetsOf(await readVideoStream(redis, ID)).length >= 5, 15_000, 'packets');
    const reconnectsBefore = await metricValue('zmcast_capture_reconnects_total', { monitor: String(ID) });

    await camera.stop();
    await waitForEvent(redis, 'connection_failed');
    expect(JSON.parse((await redis.get(`zmcast:{m:${ID}}:status`))!).state).toBe('failed');
    // Several refused retries (backoff 100–400 ms) while the camera is down: still one event.
    await sleep(1200);
    const reconnects = await metricValue('zmcast_capture_reconnects_total', { monitor: String(ID) });
    expect(reconnects - reconnectsBefore).toBeGreaterThanOrEqual(3);

    await camera.restart();
    await waitForEvent(redis, 'capture_resumed');
    expect(await eventNames(redis)).toEqual([
      'connecting', 'connected', 'capture_failed', 'connecting', 'connection_failed', 'connection_restored', 'capture_resumed',
    ]);
    const events = await readEvents(redis, ID);
    expect(events.find((e) => e.event === 'connection_restored')!.generation).toBe(2);

    await until(async () => packetsOf(await readVideoStream(redis, ID)).filter((p) => p.generation === 2).length >= 5, 15_000, 'generation 2 packets');
    expect((await readMetaConfig(redis, ID))?.generation).toBe(2);
    const entries = await readVideoStream(redis, ID);
    const firstOfGen2 = entries.findIndex((e) => 'packet' in e && e.packet.generation === 2);
    expect(entries[firstOfGen2 - 1]).toMatchObject({ config: { generation: 2 } });
    const gen2 = packetsOf(entries).filter((p) => p.generation === 2);
    expect(gen2[0]).toMatchObject({ keyframe: true, sequence: 0 });
    expect(probeAnnexB(configsOf(entries).at(-1)!, gen2).errors).toBe('');
  });

  it('notices a camera that hangs without closing the connection, through the read timeout', async () => {
    const { camera, redis } = await captureCamera({}, 1000);
    await until(async () => packetsOf(await readVideoStream(redis, ID)).length >= 5, 15_000, 'packets');
    camera.freeze();
    const frozenAt = Date.now();
    await waitForEvent(redis, 'capture_failed');
    expect(Date.now() - frozenAt).toBeLessThan(3000);
    await waitForEvent(redis, 'connection_failed');
    camera.thaw();
    await waitForEvent(redis, 'capture_resumed');
  });

  it('stops promptly while the camera is down', async () => {
    const { camera, capture } = await captureCamera();
    await camera.stop();
    await waitForEvent(redis!, 'connection_failed');
    const t0 = performance.now();
    await capture.stop();
    expect(performance.now() - t0).toBeLessThan(500);
    expect(JSON.parse((await redis!.get(`zmcast:{m:${ID}}:status`))!).state).toBe('stopped');
  });
});
