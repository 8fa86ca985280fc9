/**
 * The whole slice with real parts: synthetic camera → capture → Redis →
 * edge → WebSocket clients, and what they receive must decode.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZmcastClient, type ReceivedPacket } from '../../client/zmcast-client.js';
import { configFromJson, type CodecConfig } from '../../shared/codec.js';
import { probeAnnexB } from '../fixtures/capture-stream.js';
import { startCaptureAndEdge, type CaptureAndEdge } from '../helpers/capture-and-edge.js';
import { sleep, until } from '../helpers/wait.js';

let slice: CaptureAndEdge;
let url: string;

beforeAll(async () => {
  slice = await startCaptureAndEdge([{ id: 1, name: 'Lobby', source: 'synthetic:?size=320x240&fps=25&gop=25' }], {
    auth: { mode: 'none' },
  });
  url = slice.url;
});

afterAll(async () => {
  await slice?.close();
});

async function watchFor(ms: number): Promise<{ config: CodecConfig; packets: ReceivedPacket[]; firstFrameMs: number }> {
  const client = await ZmcastClient.connect(url);
  const packets: ReceivedPacket[] = [];
  let config: CodecConfig | null = null;
  const t0 = performance.now();
  let firstFrameMs = -1;
  client.on('codec', (c) => (config ??= configFromJson(c)));
  client.on('packet', (p) => {
    if (firstFrameMs < 0) firstFrameMs = performance.now() - t0;
    packets.push(p);
  });
  client.subscribeStream(1, 'h264');
  await sleep(ms);
  await client.close();
  return { config: config!, packets, firstFrameMs };
}

describe('live view end to end', () => {
  it('gives two viewers a keyframe-first H.264 stream that ffprobe decodes without errors', async () => {
    await until(async () => (await slice.redis.hget('zmcast:{m:1}:meta', 'kf')) !== null, 15_000, 'first keyframe');
    const [a, b] = await Promise.all([watchFor(3000), watchFor(3000)]);
    for (const v of [a, b]) {
      expect(v.config).toMatchObject({ codec: 'h264', width: 320, height: 240 });
      expect(v.packets[0].keyframe).toBe(true);
      expect(v.packets.length).toBeGreaterThan(50);
      const probe = probeAnnexB(v.config, v.packets);
      expect(probe.errors).toBe('');
      expect(probe.frames).toBe(v.packets.length);
    }
  });

  it('starts a late joiner at the latest keyframe: its first frame decodes at once', async () => {
    await sleep(500); // join mid-GOP
    const late = await watchFor(1500);
    expect(late.packets[0].keyframe).toBe(true);
    expect(late.firstFrameMs).toBeLessThan(1000);
    const probe = probeAnnexB(late.config, late.packets.slice(0, 1));
    expect(probe.errors).toBe('');
    expect(probe.frames).toBe(1);
  });

  it('reports capture→send latency and clients in /metrics', async () => {
    const text = await (await fetch(`${slice.adminUrl}/metrics`)).text();
    expect(text).toMatch(/zmcast_edge_capture_to_send_seconds_count\{monitor="1"\} [1-9]/);
    expect(text).toMatch(/zmcast_capture_packets_total\{monitor="1"\} [1-9]/);
    expect(text).toContain('zmcast_edge_clients');
  });
});
