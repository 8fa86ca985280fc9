import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { decodeHeader, encodePacket } from '../../shared/packet.js';
import { parsePictureSpec, PictureError } from '../../shared/pictures/picture-spec.js';
import { monitorKeys, MONITORS_KEY } from '../../shared/redis-keys.js';
import { metricValue } from '../helpers/metrics.js';
import { expectTestPattern, i420Pixel, type Rgb } from './test-pattern.js';
import { pictureRig } from './picture-rig.js';

const start = pictureRig();
const camera = (id: number, query = 'size=640x360&fps=25&gop=25') => ({ id, name: `Camera ${id}`, source: `synthetic:?${query}` });

async function rejection(p: Promise<unknown>): Promise<PictureError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(PictureError);
  return err as PictureError;
}

describe('snapshots', () => {
  it('are JPEGs of the requested size that show the camera picture of this moment', async () => {
    const rig = await start([camera(1)]);
    await rig.worker();
    await rig.packets(1, 5);
    const client = rig.client();
    const [newest] = (await rig.redis.xrevrangeBuffer(monitorKeys(1).video, '+', '-', 'COUNT', 1)) as [Buffer, Buffer[]][];
    const before = decodeHeader(newest[1][1]);

    const picture = await client.snapshot(1, parsePictureSpec({ format: 'jpeg', width: '320' }));

    expect(picture).toMatchObject({ monitorId: 1, format: 'jpeg', contentType: 'image/jpeg', width: 320, height: 180 });
    // Fresh: the packet that was newest when asked, or a later one.
    expect(picture.generation).toBe(before.generation);
    expect(picture.sequence).toBeGreaterThanOrEqual(before.sequence);
    const { data, info } = await sharp(picture.data).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([320, 180]);
    expectTestPattern(320, 180, (x, y) => [...data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3)] as Rgb);
  });

  it('give rgba and I420 with the strides of padded rows, which reconstruct the picture', async () => {
    const rig = await start([camera(2)]);
    await rig.worker();
    await rig.packets(2, 5);
    const client = rig.client();

    // 650 wide: neither 650×4 nor 650 is a multiple of FFmpeg's row alignment, so rows are padded.
    const rgba = await client.snapshot(2, parsePictureSpec({ format: 'rgba', width: 650 }));
    expect([rgba.width, rgba.height, rgba.contentType]).toEqual([650, 366, 'application/octet-stream']);
    expect(rgba.lineSizes).toHaveLength(1);
    expect(rgba.lineSizes[0]).toBeGreaterThan(650 * 4);
    expect(rgba.data.length).toBe(rgba.lineSizes[0] * rgba.height);
    expectTestPattern(rgba.width, rgba.height, (x, y) => [...rgba.data.subarray(y * rgba.lineSizes[0] + x * 4, y * rgba.lineSizes[0] + x * 4 + 3)] as Rgb);

    const yuv = await client.snapshot(2, parsePictureSpec({ format: 'yuv420p', width: 650 }));
    expect([yuv.width, yuv.height]).toEqual([650, 366]);
    expect(yuv.lineSizes).toHaveLength(3);
    expect(yuv.lineSizes[0]).toBeGreaterThan(650);
    expect(yuv.lineSizes[1]).toBeGreaterThan(325);
    expect(yuv.data.length).toBe(yuv.lineSizes[0] * 366 + (yuv.lineSizes[1] + yuv.lineSizes[2]) * 183);
    expectTestPattern(yuv.width, yuv.height, (x, y) => i420Pixel(yuv.data, yuv.lineSizes, yuv.height, x, y));

    // At the camera's own size, I420 comes straight from the decoder with its line sizes.
    const native = await client.snapshot(2, parsePictureSpec({ format: 'yuv420p' }));
    expect([native.width, native.height]).toEqual([640, 360]);
    expectTestPattern(640, 360, (x, y) => i420Pixel(native.data, native.lineSizes, 360, x, y));
  });

  it('cost one decode for 50 simultaneous requests through two edges', async () => {
    const rig = await start([camera(3)]);
    await rig.worker();
    await rig.packets(3, 5);
    const [edgeA, edgeB] = [rig.client(), rig.client()];
    const spec = parsePictureSpec({ format: 'jpeg', width: 160 });
    const made = await metricValue('zmcast_worker_pictures_total', { source: 'snapshot' });

    const pictures = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? edgeA : edgeB).snapshot(3, spec)));

    expect(await metricValue('zmcast_worker_pictures_total', { source: 'snapshot' })).toBe(made + 1);
    expect(new Set(pictures.map((p) => p.sequence)).size).toBe(1);
    expect(pictures.every((p) => p.width === 160 && p.data.length > 0)).toBe(true);
  });

  it('work for H.265 cameras too (JPEG for browsers without HEVC)', async () => {
    const rig = await start([camera(4, 'size=640x360&fps=25&gop=25&codec=h265')]);
    await rig.worker();
    await rig.packets(4, 5);
    const picture = await rig.client().snapshot(4, parsePictureSpec({ format: 'jpeg' }));
    const { data, info } = await sharp(picture.data).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([640, 360]);
    expectTestPattern(640, 360, (x, y) => [...data.subarray((y * 640 + x) * info.channels, (y * 640 + x) * info.channels + 3)] as Rgb);
  });
});

describe('snapshot errors come in bounded time', () => {
  it('unknown monitor, camera down, and no worker running each get their code', async () => {
    const rig = await start([camera(5), { id: 6, name: 'Dead', source: 'rtsp://127.0.0.1:9/none' }]);
    await rig.packets(5, 5);
    const client = rig.client();
    const spec = parsePictureSpec({ format: 'jpeg' });

    const t0 = Date.now();
    expect((await rejection(client.snapshot(5, spec, 10_000))).code).toBe('overloaded');
    expect(Date.now() - t0).toBeLessThan(2000);

    await rig.worker();
    expect((await rejection(client.snapshot(99, spec))).code).toBe('unknown_monitor');
    await rig.redis.sadd('zmcast:monitors', '6');
    expect((await rejection(client.snapshot(6, spec))).code).toBe('camera_down');
  });

  it('a codec no worker can decode gets unsupported_codec', async () => {
    const rig = await start([camera(7)]);
    await rig.worker();
    // A monitor as capture would publish it, of a codec this build has no decoder for.
    const k = monitorKeys(8);
    const config = { codec: 'vp9', codec_string: 'vp09.00.10.08', width: 320, height: 240, extradata: '', generation: 1 };
    const packet = encodePacket({ keyframe: true, monitorId: 8, generation: 1, sequence: 0, captureTime: Date.now(), pts: 0n, dts: 0n, duration: 40_000, data: Buffer.alloc(64, 1) });
    const id = await rig.redis.xadd(k.video, '*', 'p', packet);
    await rig.redis.hset(k.meta, 'config', JSON.stringify(config), 'kf', id!);
    await rig.redis.sadd(MONITORS_KEY, '8');

    const t0 = Date.now();
    const err = await rejection(rig.client().snapshot(8, parsePictureSpec({ format: 'jpeg' })));
    expect([err.code, err.message]).toEqual(['unsupported_codec', 'no decoder for vp9 in this worker']);
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('refuses absurd sizes and unknown formats, naming the field', () => {
    for (const [raw, field] of [
      [{ format: 'jpeg', width: 0 }, 'width'],
      [{ format: 'jpeg', height: 100000 }, 'height'],
      [{ format: 'png' }, 'format'],
      [{ format: 'jpeg', quality: 101 }, 'quality'],
      [{ format: 'jpeg', width: 'abc' }, 'width'],
    ] as const) {
      const err = (() => { try { parsePictureSpec(raw); } catch (e) { return e as PictureError; } return null; })();
      expect(err?.code).toBe('bad_request');
      expect(err?.message).toContain(field);
    }
  });
});
