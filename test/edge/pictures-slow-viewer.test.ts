/**
 * An MJPEG viewer that stops reading costs the edge its send budget and no
 * more: it skips pictures, then it is cut, and the edge stops asking for the
 * stream; a viewer that reads keeps getting every picture meanwhile.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setLogLevel } from '../../shared/log.js';
import { metricValue } from '../helpers/metrics.js';
import { sleep, until } from '../helpers/wait.js';
import { readMultipart, startPictureSlice, type PictureSlice } from './pictures-rig.js';

let slice: PictureSlice;

beforeAll(async () => {
  setLogLevel('error');
  slice = await startPictureSlice([{ id: 1, name: 'Lobby', source: 'synthetic:?size=1280x720&fps=10&gop=10' }], {
    auth: { mode: 'none' },
    edge: { softLimitBytes: 64 * 1024, hardLimitBytes: 512 * 1024, hardLimitMs: 1500 },
  });
  await until(async () => (await slice.redis.xlen('zmcast:{m:1}:video')) > 0, 20_000, 'video');
});

afterAll(async () => {
  await slice?.close();
  setLogLevel('warn');
});

describe('a slow MJPEG viewer', () => {
  it('skips pictures and is then cut, while a viewer of the same stream that reads gets every picture', async () => {
    const url = new URL(`${slice.url}/monitors/1/mjpeg?maxfps=10&quality=100`);
    const skipped0 = await metricValue('zmcast_edge_dropped_frames_total', { monitor: '1' });
    const cut0 = await metricValue('zmcast_edge_dropped_clients_total', { reason: 'slow_consumer' });
    const reader = await readMultipart(url.href);
    // A viewer that asks and then never reads.
    const stalled: Socket = connect({ host: url.hostname, port: Number(url.port) });
    await new Promise((resolve) => stalled.once('connect', resolve));
    stalled.write(`GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`);
    stalled.pause();
    stalled.on('error', () => undefined); // cut by the edge
    const t0 = Date.now();
    // Full-size pictures of quality 100 fill the kernel buffers and the soft limit within seconds.
    await until(async () => (await metricValue('zmcast_edge_dropped_clients_total', { reason: 'slow_consumer' })) > cut0, 30_000, 'the stalled viewer to be cut');
    const cutAt = Date.now();
    expect(await metricValue('zmcast_edge_dropped_frames_total', { monitor: '1' }) - skipped0).toBeGreaterThanOrEqual(1);
    // The reader was not held back: about maxfps parts per second the whole time.
    const seconds = (cutAt - t0) / 1000;
    expect(reader.parts.length / seconds).toBeGreaterThan(3);
    stalled.destroy();
    reader.close();
    await until(() => slice.edges[0].edge.pictures.size === 0, 5000, 'the stream to be released');
  });
});
