import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { decodeHeader, encodePacket } from '../../shared/packet.js';
import { decodePicture } from '../../shared/pictures/picture.js';
import { parsePictureSpec, type PictureError } from '../../shared/pictures/picture-spec.js';
import { monitorKeys, SUB_STREAMS_KEY, type Quality } from '../../shared/redis-keys.js';
import type { RedisClient } from '../../shared/redis.js';
import { metricValue } from '../helpers/metrics.js';
import { until } from '../helpers/wait.js';
import { pictureRig } from './picture-rig.js';
import { expectTestPattern, type Rgb } from './test-pattern.js';

const start = pictureRig();
const MAIN = 'synthetic:?size=1280x720&fps=10&gop=10';
const SUB = 'synthetic:?size=640x360&fps=10&gop=10';
/** Nothing listens on port 1: the sub-stream never connects. */
const DEAD = 'rtsp://127.0.0.1:1/none';

const made = (source: string, quality: Quality) => metricValue('zmcast_worker_pictures_total', { source, quality });
const decoded = (quality: Quality) => metricValue('zmcast_worker_decoded_frames_total', { quality });

async function newestHeader(redis: RedisClient, monitorId: number, quality: Quality) {
  const entries = (await redis.xrevrangeBuffer(monitorKeys(monitorId, quality).video, '+', '-', 'COUNT', 2)) as [Buffer, Buffer[]][];
  const entry = entries.find(([, f]) => f[0].toString() === 'p')!;
  return decodeHeader(entry[1][1]);
}

async function subPackets(redis: RedisClient, monitorId: number, n: number): Promise<void> {
  await until(async () => (await redis.xlen(monitorKeys(monitorId, 'sub').video)) >= n, 20_000, `${n} sub-stream packets of monitor ${monitorId}`);
}

describe('pictures of a monitor with a sub-stream', () => {
  it('are decoded from the sub-stream when they fit within it, from main when larger, each saying which', async () => {
    const rig = await start([{ id: 1, name: 'Two streams', source: MAIN, secondSource: SUB }]);
    await rig.worker();
    await Promise.all([rig.packets(1, 5), subPackets(rig.redis, 1, 5)]);
    const client = rig.client();
    const [subMade, mainMade, mainDecoded] = [await made('snapshot', 'sub'), await made('snapshot', 'main'), await decoded('main')];
    const subBefore = await newestHeader(rig.redis, 1, 'sub');

    const small = await client.snapshot(1, parsePictureSpec({ format: 'jpeg', width: 320 }));

    expect(await made('snapshot', 'sub')).toBe(subMade + 1);
    // Nothing of main was decoded for it.
    expect(await decoded('main')).toBe(mainDecoded);
    expect(small).toMatchObject({ quality: 'sub', width: 320, height: 180, generation: subBefore.generation });
    // Generation and sequence are the sub-stream's: the packet newest when asked, or a later one.
    expect(small.sequence).toBeGreaterThanOrEqual(subBefore.sequence);
    const { data, info } = await sharp(small.data).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([320, 180]);
    expectTestPattern(320, 180, (x, y) => [...data.subarray((y * 320 + x) * info.channels, (y * 320 + x) * info.channels + 3)] as Rgb);

    // The sub-stream's own size still fits; one pixel more does not.
    expect((await client.snapshot(1, parsePictureSpec({ format: 'jpeg', width: 640 }))).quality).toBe('sub');
    const mainBefore = await newestHeader(rig.redis, 1, 'main');
    const larger = await client.snapshot(1, parsePictureSpec({ format: 'jpeg', width: 642 }));
    expect(larger).toMatchObject({ quality: 'main', width: 642, height: 361, generation: mainBefore.generation });
    expect(larger.sequence).toBeGreaterThanOrEqual(mainBefore.sequence);
    const big = await client.snapshot(1, parsePictureSpec({ format: 'jpeg', width: 1280 }));
    expect(big).toMatchObject({ quality: 'main', width: 1280, height: 720 });
    // No size asked: the camera's own size, from main.
    expect(await client.snapshot(1, parsePictureSpec({ format: 'jpeg' }))).toMatchObject({ quality: 'main', width: 1280, height: 720 });
    expect(await made('snapshot', 'main')).toBe(mainMade + 3);
  });

  it('come as derived streams (MJPEG, image subscriptions) from the sub-stream too', async () => {
    const rig = await start([{ id: 2, name: 'Two streams', source: MAIN, secondSource: SUB }]);
    await rig.worker();
    await Promise.all([rig.packets(2, 5), subPackets(rig.redis, 2, 5)]);
    const client = rig.client();
    const spec = parsePictureSpec({ format: 'jpeg', width: 160 });
    const key = await client.want(2, spec, 2);
    // Renewed as an edge does while anyone subscribes: one want() can lapse during a worker's cold start.
    const renew = rig.keepWanting(() => client.want(2, spec, 2));
    const first = await until(async () => {
      const [entry] = (await rig.redis.xrangeBuffer(key, '-', '+', 'COUNT', 1)) as [Buffer, Buffer[]][];
      return entry && decodePicture(entry[1][1]);
    }, 20_000, 'a derived picture');
    await renew.stop();

    expect(first).toMatchObject({ quality: 'sub', width: 160, height: 90 });
    expect(await made('derived', 'sub')).toBeGreaterThanOrEqual(1);
  });

  it('move to main, without an error, when the sub-stream falls silent, and the cached sub-stream picture is not reused', async () => {
    const rig = await start([{ id: 5, name: 'Two streams', source: MAIN, secondSource: SUB }]);
    await rig.worker();
    await Promise.all([rig.packets(5, 5), subPackets(rig.redis, 5, 5)]);
    const client = rig.client();
    const thumb = parsePictureSpec({ format: 'jpeg', width: 160 });
    const key = await client.want(5, thumb, 2);
    const renew = rig.keepWanting(() => client.want(5, thumb, 2));
    const newestPicture = async () => {
      const [entry] = (await rig.redis.xrevrangeBuffer(key, '+', '-', 'COUNT', 1)) as [Buffer, Buffer[]][];
      return entry && decodePicture(entry[1][1]);
    };
    try {
      await until(async () => (await newestPicture())?.quality === 'sub', 20_000, 'a derived picture from the sub-stream');
      const spec = parsePictureSpec({ format: 'jpeg', width: 320 });
      expect((await client.snapshot(5, spec)).quality).toBe('sub');

      // The sub-stream's camera goes away: its history stays in Redis, and ages.
      await rig.capture.apply([{ id: 5, name: 'Two streams', source: MAIN, secondSource: DEAD }]);
      const silentFrom = Date.now();

      const moved = await until(async () => {
        const p = await newestPicture();
        return p?.quality === 'main' ? p : undefined;
      }, 20_000, 'a derived picture from main');
      expect(moved).toMatchObject({ width: 160, height: 90 });
      expect(moved.captureTime).toBeGreaterThan(silentFrom);
      const picture = await client.snapshot(5, spec).catch((err: PictureError) => expect.fail(`${err.code}: ${err.message}`));
      expect(picture).toMatchObject({ quality: 'main', width: 320, height: 180 });
    } finally {
      await renew.stop();
    }
  });

  it('come from main, without an error, while the sub-stream is dead or silent', async () => {
    const rig = await start([
      { id: 3, name: 'Sub dead', source: MAIN, secondSource: DEAD },
      { id: 4, name: 'Sub silent', source: MAIN },
    ]);
    await rig.worker();
    await Promise.all([rig.packets(3, 5), rig.packets(4, 5)]);
    // Monitor 4's sub-stream as capture left it when its camera went quiet: configured, a config, a last packet 10 s ago.
    const k = monitorKeys(4, 'sub');
    const config = { codec: 'h264', codec_string: 'avc1.64001E', width: 640, height: 360, extradata: '', generation: 1 };
    const packet = encodePacket({ keyframe: true, sub: true, monitorId: 4, generation: 1, sequence: 0, captureTime: Date.now() - 10_000, pts: 0n, dts: 0n, duration: 100_000, data: Buffer.alloc(64, 1) });
    const id = await rig.redis.xadd(k.video, '*', 'p', packet);
    await rig.redis.hset(k.meta, 'config', JSON.stringify(config), 'kf', id!);
    await rig.redis.sadd(SUB_STREAMS_KEY, '4');
    const client = rig.client();
    const spec = parsePictureSpec({ format: 'jpeg', width: 320 });
    const subMade = await made('snapshot', 'sub');

    for (const monitorId of [3, 4]) {
      const picture = await client.snapshot(monitorId, spec).catch((err: PictureError) => expect.fail(`monitor ${monitorId}: ${err.code}: ${err.message}`));
      expect(picture).toMatchObject({ monitorId, quality: 'main', width: 320, height: 180 });
    }
    expect(await made('snapshot', 'sub')).toBe(subMade);
  });
});
