/**
 * Pictures over plain HTTP, end to end (capture, a real worker, edges):
 * snapshots, MJPEG, the zms-compatible URL, coalescing across edges, errors.
 */
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setLogLevel } from '../../shared/log.js';
import { metricValue } from '../helpers/metrics.js';
import { sleep, until } from '../helpers/wait.js';
import { readMultipart, startPictureSlice, type MultipartStream, type PictureSlice } from './pictures-rig.js';

let slice: PictureSlice;
const streams: MultipartStream[] = [];

beforeAll(async () => {
  setLogLevel('error');
  slice = await startPictureSlice([
    { id: 1, name: 'Lobby', source: 'synthetic:?size=640x360&fps=10&gop=10' },
    { id: 2, name: 'Dead', source: 'rtsp://127.0.0.1:9/none' },
    // Slow, so that a burst of requests all ask for the same frame.
    { id: 3, name: 'Slow', source: 'synthetic:?size=640x360&fps=2&gop=2' },
  ]);
  await until(async () => (await slice.redis.xlen('zmcast:{m:1}:video')) > 0 && (await slice.redis.xlen('zmcast:{m:3}:video')) > 0, 20_000, 'video');
});

afterAll(async () => {
  for (const s of streams.splice(0)) s.close();
  await slice?.close();
  setLogLevel('warn');
});

async function mjpeg(url: string): Promise<MultipartStream> {
  const s = await readMultipart(url);
  streams.push(s);
  return s;
}

/** Parts per second over `ms`, after the first part came. */
async function partRate(s: MultipartStream, ms: number): Promise<number> {
  await until(() => s.parts.length > 0, 10_000, 'the first part');
  const n0 = s.parts.length;
  const t0 = Date.now();
  await sleep(ms);
  return ((s.parts.length - n0) * 1000) / (Date.now() - t0);
}

describe('HTTP pictures', () => {
  it('50 simultaneous snapshot requests through two edges for one monitor make one picture', async () => {
    const second = await slice.addEdge();
    const pictures0 = await metricValue('zmcast_worker_pictures_total', { source: 'snapshot' });
    const coalesced0 = await metricValue('zmcast_pictures_coalesced_total');
    const replies = await Promise.all(Array.from({ length: 50 }, (_, i) =>
      fetch(`${i % 2 ? second.url : slice.url}/monitors/3/snapshot.jpg?width=208`).then(async (r) => ({ status: r.status, body: Buffer.from(await r.arrayBuffer()) }))));
    expect(replies.map((r) => r.status)).toEqual(Array(50).fill(200));
    // Every reply is the same picture.
    expect(new Set(replies.map((r) => r.body.toString('base64'))).size).toBe(1);
    expect(await metricValue('zmcast_worker_pictures_total', { source: 'snapshot' }) - pictures0).toBe(1);
    expect(await metricValue('zmcast_pictures_coalesced_total') - coalesced0).toBe(49);
  });

  it('serves /monitors/:id/snapshot.jpg at the asked width or scale, fresh', async () => {
    const r = await fetch(`${slice.url}/monitors/1/snapshot.jpg?width=320&quality=60`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('image/jpeg');
    expect(r.headers.get('cache-control')).toMatch(/no-store/);
    const body = Buffer.from(await r.arrayBuffer());
    expect(Number(r.headers.get('content-length'))).toBe(body.length);
    expect(Date.now() / 1000 - Number(r.headers.get('x-timestamp'))).toBeLessThan(3);
    expect(await sharp(body).metadata()).toMatchObject({ format: 'jpeg', width: 320, height: 180 });
    const scaled = await fetch(`${slice.url}/monitors/1/snapshot.jpg?scale=25`);
    expect(await sharp(Buffer.from(await scaled.arrayBuffer())).metadata()).toMatchObject({ width: 160, height: 90 });
  });

  it('streams /monitors/:id/mjpeg as multipart JPEG parts at maxfps, and stops wanting when the viewer leaves', async () => {
    const s = await mjpeg(`${slice.url}/monitors/1/mjpeg?maxfps=4&width=160`);
    expect(s.status).toBe(200);
    expect(s.headers.get('content-type')).toBe('multipart/x-mixed-replace; boundary=ZoneMinderFrame');
    expect(s.headers.get('transfer-encoding')).toBeNull(); // as zms: no chunking, the stream ends with the connection
    const rate = await partRate(s, 4000);
    expect(rate).toBeGreaterThan(2);
    expect(rate).toBeLessThan(4 * 1.3);
    for (const part of s.parts.slice(-3)) {
      expect(part.headers['content-type']).toBe('image/jpeg');
      expect(Number(part.headers['content-length'])).toBe(part.body.length);
      expect(Number(part.headers['x-timestamp'])).toBeGreaterThan(Date.now() / 1000 - 5);
      expect(await sharp(part.body).metadata()).toMatchObject({ format: 'jpeg', width: 160, height: 90 });
    }
    expect(slice.edges[0].edge.pictures.size).toBe(1);
    s.close();
    await until(() => slice.edges[0].edge.pictures.size === 0, 3000, 'the channel to stop');
  });

  it('answers zms URLs: mode=single is one JPEG, mode=jpeg an MJPEG stream at maxfps, behind ZoneMinder\'s path', async () => {
    const single = await fetch(`${slice.url}/zm/cgi-bin/nph-zms?mode=single&monitor=1&scale=25&rand=123`);
    expect(single.status).toBe(200);
    expect(single.headers.get('server')).toMatch(/^ZoneMinder Video Server\//);
    expect(await sharp(Buffer.from(await single.arrayBuffer())).metadata()).toMatchObject({ format: 'jpeg', width: 160, height: 90 });

    const s = await mjpeg(`${slice.url}/cgi-bin/nph-zms?mode=jpeg&monitor=1&scale=50&maxfps=2&buffer=1000&connkey=424242`);
    expect(s.status).toBe(200);
    expect(s.headers.get('content-type')).toBe('multipart/x-mixed-replace; boundary=ZoneMinderFrame');
    expect(s.headers.get('server')).toMatch(/^ZoneMinder Video Server\//);
    const rate = await partRate(s, 4000);
    expect(rate).toBeGreaterThan(1);
    expect(rate).toBeLessThan(2 * 1.3);
    expect(await sharp(s.parts.at(-1)!.body).metadata()).toMatchObject({ format: 'jpeg', width: 320, height: 180 });
    s.close();
  });

  it('answers bad sizes, unknown monitors, a dead camera and what zms cannot serve with a clear status each, in bounded time', async () => {
    const status = async (path: string) => {
      const t0 = Date.now();
      const r = await fetch(slice.url + path);
      const text = await r.text();
      expect(Date.now() - t0, path).toBeLessThan(8000);
      return { status: r.status, text };
    };
    expect(await status('/monitors/1/snapshot.jpg?width=0')).toMatchObject({ status: 400, text: expect.stringMatching(/width/) });
    expect(await status('/monitors/1/snapshot.jpg?width=100000')).toMatchObject({ status: 400 });
    expect(await status('/monitors/1/snapshot.jpg?scale=big')).toMatchObject({ status: 400 });
    expect(await status('/monitors/1/mjpeg?maxfps=0')).toMatchObject({ status: 400 });
    expect((await status('/monitors/424242/snapshot.jpg')).status).toBe(404);
    expect((await status('/monitors/424242/mjpeg')).status).toBe(404);
    expect((await status('/cgi-bin/nph-zms?mode=single&monitor=424242')).status).toBe(404);
    expect(await status('/monitors/2/snapshot.jpg')).toMatchObject({ status: 503, text: expect.stringMatching(/[Cc]amera/) });
    expect([503, 504]).toContain((await status('/monitors/2/mjpeg')).status);
    expect((await status('/cgi-bin/nph-zms?mode=mpeg&format=h264&monitor=1')).status).toBe(400);
    expect((await status('/cgi-bin/nph-zms?source=event&event=3')).status).toBe(400);
    expect((await status('/cgi-bin/nph-zms?mode=single')).status).toBe(400);
  });
});
