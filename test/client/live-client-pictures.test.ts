/**
 * Picture subscriptions of the client library (client/live-client.ts) in
 * Node: a synthetic H.265 camera captured into Redis, a real picture worker,
 * two edges. The library delivers JPEGs as `picture` events and asks for them
 * again on the next edge when its edge goes away.
 */
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { LiveClient, type LivePicture, type SocketConstructor, type VideoPacket } from '../../client/live-client.js';
import { setLogLevel } from '../../shared/log.js';
import { until } from '../helpers/wait.js';
import { startPictureSlice, type PictureSlice } from '../edge/pictures-rig.js';

let slice: PictureSlice;

beforeAll(async () => {
  setLogLevel('error');
  slice = await startPictureSlice([{ id: 1, name: 'Yard', source: 'synthetic:?size=480x270&fps=15&gop=15&codec=h265' }]);
  await slice.addEdge();
  await until(async () => (await slice.redis.xlen('zmcast:{m:1}:video')) > 0, 20_000, 'video from the synthetic camera');
});

afterAll(async () => {
  await slice?.close();
  setLogLevel('warn');
});

describe('client library: pictures', () => {
  it('delivers JPEGs of the size asked as picture events, and asks again on the next edge when its edge goes away', async () => {
    const client = new LiveClient({ urls: slice.edges.map((e) => e.url), WebSocket: WebSocket as unknown as SocketConstructor, backoff: { minMs: 50 } });
    const pictures: LivePicture[] = [];
    const packets: VideoPacket[] = [];
    client.on('picture', (p) => pictures.push(p));
    client.on('packet', (p) => packets.push(p));
    client.subscribePictures(1, { fps: 5, width: 160 });

    await until(() => pictures.length >= 5, 15_000, 'five pictures');
    const first = pictures[0];
    expect(first.monitorId).toBe(1);
    expect(first.meta).toMatchObject({ type: 'stream', format: 'mjpeg', content_type: 'image/jpeg', monitor_id: 1, width: 160, height: 90, payload_bytes: first.data.length });
    const decoded = await sharp(first.data).metadata();
    expect(decoded).toMatchObject({ format: 'jpeg', width: 160, height: 90 });
    // Newer frames, not the same one again; and no picture is mistaken for video.
    expect(new Set(pictures.map((p) => p.meta.sequence)).size).toBe(pictures.length);
    expect(packets).toEqual([]);

    const connectedTo = client.url;
    const gone = slice.edges.find((e) => e.url === connectedTo)!;
    slice.edges.splice(slice.edges.indexOf(gone), 1);
    await gone.close();
    const closedAt = Date.now();
    await until(() => pictures.filter((p) => p.receivedAt > closedAt).length >= 3, 15_000, 'pictures from the other edge');
    expect(client.url).not.toBe(connectedTo);
    expect(client.reconnects).toBe(1);
    const after = pictures.find((p) => p.receivedAt > closedAt)!;
    console.log(`client pictures: again ${after.receivedAt - closedAt} ms after the edge closed`);
    expect(await sharp(after.data).metadata()).toMatchObject({ format: 'jpeg', width: 160, height: 90 });
    await client.close();
  });
});
