/**
 * Pictures over the WebSocket, end to end: a synthetic camera captured into
 * Redis, a real picture worker decoding it, an edge answering `image`,
 * `subscribe image` and MJPEG `stream` on both endpoints.
 */
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeHeader, HEADER_BYTES, PacketKind } from '../../shared/packet.js';
import { setLogLevel } from '../../shared/log.js';
import { metricValue } from '../helpers/metrics.js';
import { until } from '../helpers/wait.js';
import { frameClient, readMultipart, startPictureSlice, type FrameClient, type Payload, type PictureSlice } from './pictures-rig.js';

let slice: PictureSlice;
const clients: FrameClient[] = [];
async function connect(path: string): Promise<FrameClient> {
  const c = await frameClient(slice.url, path);
  clients.push(c);
  return c;
}

beforeAll(async () => {
  setLogLevel('error');
  slice = await startPictureSlice([
    { id: 1, name: 'Lobby', source: 'synthetic:?size=640x360&fps=10&gop=10' },
    // Never answers: registered, no video.
    { id: 2, name: 'Dead', source: 'rtsp://127.0.0.1:9/none' },
  ]);
  await until(async () => (await slice.redis.xlen('zmcast:{m:1}:video')) > 0, 20_000, 'video from the synthetic camera');
});

afterAll(async () => {
  for (const c of clients.splice(0)) c.close();
  await slice?.close();
  setLogLevel('warn');
});

async function onePayload(c: FrameClient, requestId: string, timeoutMs = 8000): Promise<Payload> {
  return until(() => c.payloads((m) => m.request_id === requestId)[0], timeoutMs, `payload ${requestId}`);
}

/** Luma at (x, y) of a raw picture as the metadata describes it, by its stated strides. */
function lumaAt(p: Payload, x: number, y: number): number {
  const [ls0] = p.meta.line_sizes as number[];
  if (p.meta.format === 'rgba') {
    const i = y * ls0 + x * 4;
    return 0.299 * p.bytes[i] + 0.587 * p.bytes[i + 1] + 0.114 * p.bytes[i + 2];
  }
  return p.bytes[y * ls0 + x];
}

describe('image over the WebSocket', () => {
  it('answers image on the per-monitor endpoint with the draft\'s two frames: metadata, then a JPEG of the asked size', async () => {
    const c = await connect('/monitors/1/ws');
    const t0 = Date.now();
    c.send({ command: 'image', format: 'jpeg', width: 320, quality: 70, request_id: 'j1' });
    const { meta, bytes } = await onePayload(c, 'j1');
    expect(Date.now() - t0).toBeLessThan(3500);
    expect(meta).toMatchObject({
      type: 'image', request_id: 'j1', format: 'jpeg', content_type: 'image/jpeg', monitor_id: 1, width: 320, height: 180,
      keyframe: true, payload_bytes: bytes.length, colours: 3, subpixel_order: 6,
    });
    for (const field of ['line_size', 'image_count', 'sequence', 'capture_time', 'line_sizes', 'generation']) expect(meta).toHaveProperty(field);
    expect(Date.now() - (meta.capture_time as number)).toBeLessThan(3000);
    const info = await sharp(bytes).metadata();
    expect(info).toMatchObject({ format: 'jpeg', width: 320, height: 180 });
  });

  it('sends rgba and yuv420p on /ws with the stride of every plane, as self-describing binary frames, and both show the picture the JPEG shows', async () => {
    const c = await connect('/ws');
    await c.waitText((m) => m.type === 'hello');
    c.send({ command: 'image', monitor_id: 1, format: 'rgba', width: 100, request_id: 'rgba' });
    c.send({ command: 'image', monitor_id: 1, format: 'yuv420p', width: 100, request_id: 'yuv' });
    c.send({ command: 'image', monitor_id: 1, format: 'jpeg', width: 100, request_id: 'jpeg' });
    const raw: Record<string, Payload> = {};
    for (const id of ['rgba', 'yuv', 'jpeg']) {
      const p = await onePayload(c, id);
      // The binary frame is a zmcast packet of kind picture: header, then exactly payload_bytes.
      const header = decodeHeader(p.bytes);
      expect(header).toMatchObject({ kind: PacketKind.Picture, keyframe: true, monitorId: 1, sequence: p.meta.sequence, generation: p.meta.generation });
      raw[id] = { meta: p.meta, bytes: p.bytes.subarray(HEADER_BYTES) };
      expect(raw[id].bytes.length).toBe(p.meta.payload_bytes);
    }
    const rgba = raw.rgba;
    const [rgbaStride] = rgba.meta.line_sizes as number[];
    expect(rgba.meta).toMatchObject({ format: 'rgba', content_type: 'application/octet-stream', width: 100, height: 56, colours: 4, subpixel_order: 8, line_size: rgbaStride });
    expect(rgbaStride).toBeGreaterThanOrEqual(400);
    expect(rgba.bytes.length).toBeGreaterThanOrEqual(rgbaStride * 56);

    const yuv = raw.yuv;
    const [ly, lu, lv] = yuv.meta.line_sizes as number[];
    const h = yuv.meta.height as number;
    expect(yuv.meta).toMatchObject({ format: 'yuv420p', width: 100, height: 56, colours: 1, subpixel_order: 11, line_size: ly });
    expect(ly).toBeGreaterThanOrEqual(100);
    expect(Math.min(lu, lv)).toBeGreaterThanOrEqual(50);
    // I420: Y (height rows), then U and V ((height+1)/2 rows each), at the stated strides.
    expect(yuv.bytes.length).toBeGreaterThanOrEqual(ly * h + (lu + lv) * Math.ceil(h / 2));

    // The three show the same scene: luma sampled on a grid agrees (Y may be limited range).
    const jpeg = await sharp(raw.jpeg.bytes).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
    const fromJpeg: Payload = { meta: { format: 'rgba', line_sizes: [jpeg.info.width * 4] }, bytes: jpeg.data };
    const diffs = { rgba: [] as number[], yuvFull: [] as number[], yuvLimited: [] as number[] };
    for (let y = 4; y < 56; y += 8) {
      for (let x = 5; x < 100; x += 10) {
        const l = lumaAt(fromJpeg, x, y);
        diffs.rgba.push(Math.abs(lumaAt(rgba, x, y) - l));
        diffs.yuvFull.push(Math.abs(lumaAt(yuv, x, y) - l));
        diffs.yuvLimited.push(Math.abs(lumaAt(yuv, x, y) - (16 + (l * 219) / 255)));
      }
    }
    const median = (v: number[]) => v.sort((a, b) => a - b)[Math.floor(v.length / 2)];
    expect(median(diffs.rgba)).toBeLessThan(12);
    expect(Math.min(median(diffs.yuvFull), median(diffs.yuvLimited))).toBeLessThan(12);
  });

  it('subscribes to images at interval_ms, and to an MJPEG stream, each picture a JPEG', async () => {
    const c = await connect('/monitors/1/ws');
    c.send({ command: 'subscribe', topic: 'image', format: 'jpeg', width: 160, interval_ms: 250, request_id: 's1' });
    c.send({ command: 'subscribe', topic: 'stream', codec: 'mjpeg', width: 160, interval_ms: 500, request_id: 's2' });
    expect(await c.waitText((m) => m.type === 'ack' && m.topic === 'image')).toMatchObject({ interval_ms: 250, monitor_id: 1, request_id: 's1' });
    expect(await c.waitText((m) => m.type === 'ack' && m.topic === 'stream')).toMatchObject({ interval_ms: 500, request_id: 's2' });
    await until(() => c.payloads((m) => m.type === 'image').length >= 2 && c.payloads((m) => m.type === 'stream').length >= 2, 10_000, 'pictures of both');
    const t0 = Date.now();
    const images0 = c.payloads((m) => m.type === 'image').length;
    const mjpeg0 = c.payloads((m) => m.type === 'stream').length;
    await new Promise((r) => setTimeout(r, 4000));
    const images = c.payloads((m) => m.type === 'image').length - images0;
    const mjpeg = c.payloads((m) => m.type === 'stream').length - mjpeg0;
    const seconds = (Date.now() - t0) / 1000;
    // 4 and 2 per second asked; generous margins for a loaded machine, never above the rate asked.
    expect(images / seconds).toBeGreaterThan(2);
    expect(images / seconds).toBeLessThan(4 * 1.3);
    expect(mjpeg / seconds).toBeGreaterThan(1);
    expect(mjpeg / seconds).toBeLessThan(2 * 1.3);
    const last = c.payloads((m) => m.type === 'stream').at(-1)!;
    expect(last.meta).toMatchObject({ format: 'mjpeg', content_type: 'image/jpeg', request_id: 's2', width: 160, height: 90 });
    expect((await sharp(last.bytes).metadata()).format).toBe('jpeg');
    c.send({ command: 'unsubscribe', topic: 'image' });
    c.send({ command: 'unsubscribe', topic: 'stream' });
    await c.waitText((m) => m.type === 'ack' && m.command === 'unsubscribe' && m.topic === 'stream');
  });

  it('serves every viewer of one monitor, size and rate on an edge from one derived stream, whichever endpoint they use', async () => {
    const a = await connect('/monitors/1/ws');
    const b = await connect('/ws');
    a.send({ command: 'subscribe', topic: 'image', width: 160, interval_ms: 500 });
    b.send({ command: 'subscribe', topic: 'image', monitor_id: 1, width: 160, max_fps: 2 });
    const mjpeg = await readMultipart(`${slice.url}/monitors/1/mjpeg?width=160&maxfps=2`);
    try {
      await until(() => a.payloads().length >= 3 && b.payloads().length >= 3 && mjpeg.parts.length >= 3, 10_000, 'pictures for all three');
      expect(slice.edges[0].edge.pictures.size).toBe(1);
      // The worker ends the streams of earlier tests a few seconds after their last want.
      await until(async () => (await metricValue('zmcast_worker_derived_streams')) === 1, 10_000, 'one derived stream in the worker');
      // The same pictures: the sequences one viewer got, the other got too.
      const seqA = new Set(a.payloads().map((p) => p.meta.sequence));
      expect(b.payloads().slice(1).some((p) => seqA.has(p.meta.sequence))).toBe(true);
    } finally {
      mjpeg.close();
      a.close();
      b.close();
    }
    await until(() => slice.edges[0].edge.pictures.size === 0, 5000, 'the channel to stop with its last viewer');
  });

  it('answers an unknown format, absurd sizes, an unknown monitor and a dead camera with a clear error each, in bounded time', async () => {
    const c = await connect('/ws');
    await c.waitText((m) => m.type === 'hello');
    const t0 = Date.now();
    c.send({ command: 'image', monitor_id: 1, format: 'webp', request_id: 'fmt' });
    c.send({ command: 'image', monitor_id: 1, width: 0, request_id: 'w0' });
    c.send({ command: 'image', monitor_id: 1, width: 100_000, request_id: 'w100k' });
    c.send({ command: 'subscribe', topic: 'image', monitor_id: 1, height: 100_000, request_id: 'sub100k' });
    c.send({ command: 'image', monitor_id: 424242, request_id: 'nomon' });
    c.send({ command: 'image', monitor_id: 2, request_id: 'dead' });
    c.send({ command: 'stream', codec: 'mjpeg', monitor_id: 2, request_id: 'deadmjpeg' });
    const err = (id: string) => c.waitText((m) => m.request_id === id, 10_000, `answer to ${id}`);
    expect(await err('fmt')).toMatchObject({ type: 'error', code: 'bad_request' });
    expect((await err('fmt')).message).toMatch(/format/);
    expect(await err('w0')).toMatchObject({ type: 'error', code: 'bad_request' });
    expect((await err('w0')).message).toMatch(/width/);
    expect(await err('w100k')).toMatchObject({ type: 'error', code: 'bad_request' });
    expect(await err('sub100k')).toMatchObject({ type: 'error', code: 'bad_request' });
    expect(await err('nomon')).toMatchObject({ type: 'error', code: 'unknown_monitor' });
    expect(await err('dead')).toMatchObject({ type: 'error', code: 'camera_down', message: 'Unable to fetch image payload', monitor_id: 2 });
    expect(await err('deadmjpeg')).toMatchObject({ type: 'error', code: 'camera_down', message: 'Unable to fetch mjpeg stream payload' });
    // Seven commands in order, each bounded by the snapshot deadline (3 s): no hang.
    expect(Date.now() - t0).toBeLessThan(8000);
  });

  it('tells an image subscriber of a dead camera why nothing comes, on the per-monitor endpoint', async () => {
    const c = await connect('/monitors/2/ws');
    c.send({ command: 'subscribe', topic: 'image', interval_ms: 500, request_id: 'd' });
    expect(await c.waitText((m) => m.type === 'ack')).toMatchObject({ topic: 'image', interval_ms: 500 });
    const e = await c.waitText((m) => m.type === 'error', 10_000, 'the reason');
    expect(e).toMatchObject({ monitor_id: 2, message: 'Unable to fetch image payload' });
    expect(e.code).toBe('camera_down');
  });
});
