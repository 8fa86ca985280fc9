import { afterEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { CaptureService } from '../../services/capture/capture-service.js';
import { MonitorDirectory } from '../../services/edge/monitor-directory.js';
import { monitorKeys, SUB_STREAMS_KEY } from '../../shared/redis-keys.js';
import { decodePacket } from '../../shared/packet.js';
import type { MonitorSpec } from '../../shared/config.js';
import { freshRedisUrl } from '../helpers/redis.js';
import { captureConfig } from '../fixtures/capture-config.js';
import { configsOf, packetsOf, probeAnnexB, readEvents, readMetaConfig, readVideoStream } from '../fixtures/capture-stream.js';
import { sleep, until } from '../helpers/wait.js';

const MAIN = 'synthetic:?size=320x240&fps=10&gop=10';
const SUB = 'synthetic:?size=160x120&fps=10&gop=10';
/** Nothing listens on port 1: the connection is refused at once, again and again. */
const DEAD = 'rtsp://127.0.0.1:1/none';

let running: { redis: Redis; capture: CaptureService } | undefined;
afterEach(async () => {
  await running?.capture.stop();
  running?.redis.disconnect();
  running = undefined;
});

async function capture(monitors: MonitorSpec[]) {
  const url = await freshRedisUrl();
  const redis = new Redis(url);
  const capture = new CaptureService(redis, captureConfig(url, monitors));
  running = { redis, capture };
  await capture.start();
  return { redis, capture };
}

const packetCount = async (redis: Redis, id: number, quality: 'main' | 'sub') => packetsOf(await readVideoStream(redis, id, quality)).length;

describe('a monitor with a sub-stream', () => {
  it('captures both streams as two independent histories, each with its own size, codec config and generation', async () => {
    const { redis } = await capture([{ id: 3, name: 'Two streams', source: MAIN, secondSource: SUB }]);
    await until(async () => (await packetCount(redis, 3, 'main')) >= 12 && (await packetCount(redis, 3, 'sub')) >= 12, 20_000, 'packets of both streams');

    const main = await readVideoStream(redis, 3, 'main');
    const sub = await readVideoStream(redis, 3, 'sub');
    expect(await readMetaConfig(redis, 3, 'main')).toMatchObject({ width: 320, height: 240, generation: 1 });
    expect(await readMetaConfig(redis, 3, 'sub')).toMatchObject({ width: 160, height: 120, generation: 1 });
    // What is in each stream really is that size: ffprobe reads the stored bytes.
    expect(probeAnnexB(configsOf(main)[0], packetsOf(main))).toMatchObject({ width: 320, height: 240, errors: '' });
    expect(probeAnnexB(configsOf(sub)[0], packetsOf(sub))).toMatchObject({ width: 160, height: 120, errors: '' });
    // Every packet says which stream it belongs to, in the header flag the edge forwards unchanged.
    expect(packetsOf(main).every((p) => !p.sub && p.monitorId === 3)).toBe(true);
    expect(packetsOf(sub).every((p) => p.sub && p.monitorId === 3)).toBe(true);
    expect(packetsOf(sub)[0].keyframe).toBe(true);
    // One keyframe index per stream, naming that stream's keyframes (ids are per stream:
    // main and sub keyframes of the same camera frame may well share one).
    // Both read in one transaction: capture keeps writing and trimming meanwhile.
    const keyframeIds = async (quality: 'main' | 'sub') => {
      const keys = monitorKeys(3, quality);
      const [[, indexed], [, entries]] = (await redis.multi().lrange(keys.keyframes, 0, -1).xrangeBuffer(keys.video, '-', '+').exec()) as [
        [Error | null, string[]], [Error | null, [Buffer, Buffer[]][]],
      ];
      const keyframes = new Set(entries.filter(([, f]) => f[0].toString() === 'p' && decodePacket(f[1]).keyframe).map(([id]) => id.toString()));
      return { indexed, keyframes };
    };
    for (const quality of ['main', 'sub'] as const) {
      const { indexed, keyframes } = await keyframeIds(quality);
      expect(indexed.length).toBeGreaterThan(0);
      expect(indexed.filter((id) => !keyframes.has(id)), `${quality} index ids that are not ${quality} keyframes`).toEqual([]);
    }
  });

  it('reports both streams in the status (sizes, fps, state)', async () => {
    const { redis } = await capture([{ id: 4, name: 'Status', source: MAIN, secondSource: SUB }, { id: 5, name: 'Main only', source: MAIN }]);
    const directory = new MonitorDirectory(redis);
    const status = await until(async () => {
      const s = await directory.status(4);
      return s.connected && s.sub?.connected && s.capture_fps > 0 && s.sub.capture_fps > 0 ? s : undefined;
    }, 20_000, 'both streams connected with a rate');
    expect(status).toMatchObject({ width: 320, height: 240, capture_state: 'connected' });
    expect(status.sub).toMatchObject({ online: true, connected: true, capture_state: 'connected', width: 160, height: 120, generation: 1, publishing: 'ok' });
    expect(status.sub!.capture_fps).toBeGreaterThan(3);
    const mainOnly = await until(async () => {
      const s = await directory.status(5);
      return s.connected ? s : undefined;
    }, 20_000, 'monitor 5 connected');
    expect(mainOnly.sub).toBeNull();
  });

  it('keeps the main stream going while the sub-stream cannot connect, and the sub-stream while the main one cannot', async () => {
    const { redis } = await capture([
      { id: 6, name: 'Sub down', source: MAIN, secondSource: DEAD },
      { id: 7, name: 'Main down', source: DEAD, secondSource: SUB },
    ]);
    await until(async () => (await packetCount(redis, 6, 'main')) >= 20 && (await packetCount(redis, 7, 'sub')) >= 20, 20_000, 'the working streams');
    // Retried with backoff all along, without a hole in the working stream's sequence.
    const main = packetsOf(await readVideoStream(redis, 6, 'main'));
    expect(main.map((p) => p.sequence)).toEqual(main.map((_, i) => i));
    expect(main.every((p) => p.generation === 1)).toBe(true);
    expect(await packetCount(redis, 6, 'sub')).toBe(0);
    expect(await packetCount(redis, 7, 'main')).toBe(0);
    const events6 = await readEvents(redis, 6);
    expect(events6.some((e) => e.event === 'connection_failed' && e.message.startsWith('sub-stream: '))).toBe(true);
    expect(events6.some((e) => e.event === 'connection_failed' && !e.message.startsWith('sub-stream: '))).toBe(false);
    const directory = new MonitorDirectory(redis);
    await sleep(300); // a status interval: the failed stream's record is written
    const s6 = await directory.status(6);
    expect(s6.connected).toBe(true);
    expect(s6.sub).toMatchObject({ connected: false, capture_state: 'failed' });
    const s7 = await directory.status(7);
    expect(s7.connected).toBe(false);
    expect(s7.sub).toMatchObject({ connected: true, width: 160 });
  });

  it('forgets a sub-stream the monitor no longer has, so edges stop offering it', async () => {
    const { redis, capture: service } = await capture([{ id: 8, name: 'Changing', source: MAIN, secondSource: SUB }]);
    await until(async () => (await readMetaConfig(redis, 8, 'sub')) !== null, 20_000, 'sub-stream config');
    expect(await redis.smembers(SUB_STREAMS_KEY)).toEqual(['8']);
    const result = await service.apply([{ id: 8, name: 'Changing', source: MAIN }]);
    expect(result.replaced).toEqual([8]);
    expect(await readMetaConfig(redis, 8, 'sub')).toBeNull();
    expect(await redis.smembers(SUB_STREAMS_KEY)).toEqual([]);
    expect(await redis.exists(monitorKeys(8, 'sub').video)).toBe(0);
    await until(async () => (await packetCount(redis, 8, 'main')) >= 5, 20_000, 'main stream after the change');
  });
});
