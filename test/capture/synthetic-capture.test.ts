import { afterEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { MonitorCapture } from '../../services/capture/monitor-capture.js';
import { splitAnnexB } from '../../shared/codec.js';
import { freshRedisUrl } from '../helpers/redis.js';
import { captureConfig } from '../fixtures/capture-config.js';
import { configsOf, packetsOf, probeAnnexB, readEvents, readMetaConfig, readVideoStream } from '../fixtures/capture-stream.js';
import { until } from '../helpers/wait.js';
import { takeLease } from '../fixtures/lease.js';

const redises: Redis[] = [];
const captures: MonitorCapture[] = [];

afterEach(async () => {
  await Promise.all(captures.splice(0).map((c) => c.stop()));
  redises.splice(0).forEach((r) => r.disconnect());
});

async function startCapture(source: string, overrides = {}) {
  const url = await freshRedisUrl();
  const redis = new Redis(url);
  redises.push(redis);
  const capture = new MonitorCapture(redis, { id: 7, name: 'Synthetic', source }, captureConfig(url, [], overrides), await takeLease(redis, 7));
  captures.push(capture);
  await capture.start();
  return { url, redis, capture };
}

async function packetCount(redis: Redis, n: number) {
  await until(async () => packetsOf(await readVideoStream(redis, 7)).length >= n, 15_000, `${n} packets`);
}

describe('synthetic capture', () => {
  it('publishes the codec config, then keyframe-first packets that decode cleanly', async () => {
    const { redis, capture } = await startCapture('synthetic:?size=320x240&fps=25&gop=25');
    await packetCount(redis, 40);
    await capture.stop();

    const entries = await readVideoStream(redis, 7);
    expect('config' in entries[0]).toBe(true);
    const [config] = configsOf(entries);
    expect(config).toMatchObject({ codec: 'h264', width: 320, height: 240, generation: 1 });
    expect(config.codecString).toMatch(/^avc1\.[0-9A-F]{6}$/);
    expect(config.extradata.length).toBeGreaterThan(8);

    const packets = packetsOf(entries);
    expect(packets[0].keyframe).toBe(true);
    expect(packets.map((p) => p.sequence)).toEqual(packets.map((_, i) => i));
    expect(packets.every((p) => p.generation === 1 && p.monitorId === 7)).toBe(true);
    // Fixed GOP: a keyframe every 25 packets and nowhere else.
    expect(packets.filter((p) => p.keyframe).map((p) => p.sequence)).toEqual(
      packets.map((p) => p.sequence).filter((s) => s % 25 === 0),
    );

    const probe = probeAnnexB(config, packets);
    expect(probe).toEqual({ codec: 'h264', width: 320, height: 240, frames: packets.length, errors: '' });
  });

  it('paces packets at the camera frame rate instead of bursting', async () => {
    const { redis } = await startCapture('synthetic:?size=160x120&fps=20');
    await packetCount(redis, 21);
    const packets = packetsOf(await readVideoStream(redis, 7)).slice(0, 21);
    const seconds = (packets[20].captureTime - packets[0].captureTime) / 1000;
    expect(seconds).toBeGreaterThan(0.9);
    expect(seconds).toBeLessThan(1.3);
    expect(Number(packets[20].pts - packets[0].pts)).toBe(1_000_000);
    expect(packets[0].duration).toBe(50_000);
  });

  it('encodes H.265 with VPS/SPS/PPS in the config when asked', async () => {
    const { redis, capture } = await startCapture('synthetic:?size=320x240&fps=25&gop=10&codec=h265');
    await packetCount(redis, 12);
    await capture.stop();
    const entries = await readVideoStream(redis, 7);
    const [config] = configsOf(entries);
    expect(config.codec).toBe('h265');
    expect(config.codecString).toMatch(/^hev1\./);
    expect(splitAnnexB(config.extradata).map((nal) => (nal[0] >> 1) & 0x3f)).toEqual([32, 33, 34]);
    const packets = packetsOf(entries);
    expect(probeAnnexB(config, packets)).toEqual({ codec: 'hevc', width: 320, height: 240, frames: packets.length, errors: '' });
  });

  it('keeps raising the generation across a restart of the capture process', async () => {
    const { url, redis, capture } = await startCapture('synthetic:?size=160x120');
    await packetCount(redis, 1);
    await capture.stop();
    expect((await readMetaConfig(redis, 7))?.generation).toBe(1);

    const again = new MonitorCapture(redis, { id: 7, name: 'Synthetic', source: 'synthetic:?size=160x120' }, captureConfig(url, []), await takeLease(redis, 7));
    captures.push(again);
    await again.start();
    await until(async () => packetsOf(await readVideoStream(redis, 7)).some((p) => p.generation === 2), 15_000, 'generation 2 packets');
    expect((await readMetaConfig(redis, 7))?.generation).toBe(2);
    const events = await readEvents(redis, 7);
    expect(events.map((e) => e.event)).toEqual(['connecting', 'connected', 'connecting', 'connected']);
  });

  it('announces a codec change when the monitor comes back in another format', async () => {
    const { url, redis, capture } = await startCapture('synthetic:?size=160x120');
    await packetCount(redis, 1);
    await capture.stop();

    const resized = new MonitorCapture(redis, { id: 7, name: 'Synthetic', source: 'synthetic:?size=320x240' }, captureConfig(url, []), await takeLease(redis, 7));
    captures.push(resized);
    await resized.start();
    await until(async () => packetsOf(await readVideoStream(redis, 7)).some((p) => p.generation === 2), 15_000, 'generation 2 packets');
    const changed = (await readEvents(redis, 7)).find((e) => e.event === 'codec_changed');
    expect(changed).toMatchObject({ generation: 2, message: expect.stringMatching(/160x120 → .*320x240/) });
    expect(await readMetaConfig(redis, 7)).toMatchObject({ width: 320, height: 240, generation: 2 });
  });

  it('rejects a synthetic source it can never produce before starting anything', async () => {
    const url = await freshRedisUrl();
    const redis = new Redis(url);
    redises.push(redis);
    const lease = await takeLease(redis, 1);
    expect(() => new MonitorCapture(redis, { id: 1, name: 'Bad', source: 'synthetic:?size=big' }, captureConfig(url, []), lease))
      .toThrow(/size must be WIDTHxHEIGHT/);
  });
});
