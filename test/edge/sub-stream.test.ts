import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZmcastClient, type ReceivedPacket } from '../../client/zmcast-client.js';
import type { AckReply, CodecReply, ErrorReply, StatusReply } from '../../shared/protocol.js';
import { startCaptureAndEdge, type CaptureAndEdge } from '../helpers/capture-and-edge.js';
import { metricValue } from '../helpers/metrics.js';
import { sleep, until } from '../helpers/wait.js';

/** Monitor 1 has a sub-stream; monitor 2 has none. */
const MAIN = 'synthetic:?size=320x240&fps=10&gop=10';
const SUB = 'synthetic:?size=160x120&fps=10&gop=10';

let slice: CaptureAndEdge;
const clients: ZmcastClient[] = [];

beforeAll(async () => {
  slice = await startCaptureAndEdge([
    { id: 1, name: 'Two streams', source: MAIN, secondSource: SUB },
    { id: 2, name: 'Main only', source: MAIN },
  ]);
});
afterAll(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await slice?.close();
});

type Item = { kind: 'ack'; ack: AckReply } | { kind: 'codec'; codec: CodecReply } | { kind: 'packet'; packet: ReceivedPacket };

/** A client whose replies and packets land on one timeline, in the order the socket delivered them. */
async function viewer() {
  const client = await ZmcastClient.connect(slice.url);
  clients.push(client);
  const timeline: Item[] = [];
  client.on('ack', (ack) => timeline.push({ kind: 'ack', ack }));
  client.on('codec', (codec) => timeline.push({ kind: 'codec', codec }));
  client.on('packet', (packet) => timeline.push({ kind: 'packet', packet }));
  const packets = (from = 0) => timeline.slice(from).flatMap((i) => (i.kind === 'packet' ? [i.packet] : []));
  const subscribe = async (monitorId: number, extra: Record<string, unknown>) => {
    const acked = client.next('ack');
    client.send({ command: 'subscribe', topic: 'stream', monitor_id: monitorId, codec: 'auto', request_id: 'sub', ...extra });
    return (await acked)[0];
  };
  return { client, timeline, packets, subscribe };
}

describe('sub-stream subscriptions', () => {
  it('serves quality "sub": the ack and codec reply say sub, the decoder is sized for it, and every packet carries the sub flag', async () => {
    const v = await viewer();
    const ack = await v.subscribe(1, { quality: 'sub' });
    expect(ack).toEqual({ type: 'ack', command: 'subscribe', topic: 'stream', interval_ms: 0, monitor_id: 1, quality: 'sub', keyframes_only: false, request_id: 'sub' });
    await until(() => v.packets().length >= 15, 20_000, 'sub packets');
    const codecs = v.timeline.flatMap((i) => (i.kind === 'codec' ? [i.codec] : []));
    expect(codecs[0]).toMatchObject({ type: 'codec', monitor_id: 1, quality: 'sub', codec: 'h264', width: 160, height: 120 });
    const packets = v.packets();
    expect(packets[0].keyframe).toBe(true);
    expect(packets.every((p) => p.sub === true && p.monitorId === 1)).toBe(true);
    expect(await metricValue('zmcast_edge_stream_subscribers', { monitor: '1', quality: 'sub' })).toBe(1);
    await v.client.close();
  });

  it('switches a live subscription to main: codec(main) follows the ack, then a main keyframe, and no sub packet after it', async () => {
    const v = await viewer();
    await v.subscribe(1, { quality: 'sub' });
    await until(() => v.packets().length >= 8, 20_000, 'sub packets flowing');
    const ack = await v.subscribe(1, { quality: 'main' });
    expect(ack).toMatchObject({ quality: 'main', keyframes_only: false });
    expect(ack.fallback).toBeUndefined();
    const at = v.timeline.findIndex((i) => i.kind === 'ack' && i.ack.quality === 'main');
    await until(() => v.packets(at).length >= 15, 20_000, 'main packets');
    const after = v.timeline.slice(at + 1);
    expect(after[0]).toMatchObject({ kind: 'codec', codec: { quality: 'main', width: 320, height: 240 } });
    const packets = v.packets(at);
    expect(packets[0].keyframe).toBe(true);
    expect(packets.every((p) => !p.sub)).toBe(true);
    // One stream subscription per monitor: the sub one is gone from this edge.
    expect(await metricValue('zmcast_edge_stream_subscribers', { monitor: '1', quality: 'sub' })).toBe(0);
    expect(await metricValue('zmcast_edge_stream_subscribers', { monitor: '1', quality: 'main' })).toBe(1);
    await v.client.close();
  });

  it('falls back to main for "sub" on a monitor without a sub-stream, and says so in the ack', async () => {
    const v = await viewer();
    const ack = await v.subscribe(2, { quality: 'sub' });
    expect(ack).toEqual({ type: 'ack', command: 'subscribe', topic: 'stream', interval_ms: 0, monitor_id: 2, quality: 'main', keyframes_only: false, fallback: true, request_id: 'sub' });
    await until(() => v.packets().length >= 5, 20_000, 'main packets');
    expect(v.timeline.find((i) => i.kind === 'codec')).toMatchObject({ codec: { quality: 'main', width: 320 } });
    expect(v.packets().every((p) => !p.sub && p.monitorId === 2)).toBe(true);
    await v.client.close();
  });

  it('sends keyframes alone with keyframes_only, the codec config first', async () => {
    const v = await viewer();
    const ack = await v.subscribe(1, { quality: 'sub', keyframes_only: true });
    expect(ack).toMatchObject({ quality: 'sub', keyframes_only: true });
    // A keyframe a second (gop 10 at 10 fps): three of them take about three seconds.
    await until(() => v.packets().length >= 3, 20_000, 'three keyframes');
    await sleep(500);
    expect(v.timeline.find((i) => i.kind !== 'ack')?.kind).toBe('codec');
    const packets = v.packets();
    expect(packets.every((p) => p.keyframe && p.sub)).toBe(true);
    const sequences = packets.map((p) => p.sequence);
    expect(sequences.slice(1).every((s, i) => s - sequences[i] === 10)).toBe(true);
    await v.client.close();
  });

  it('refuses an unknown quality or a keyframes_only that is not a boolean', async () => {
    const v = await viewer();
    for (const bad of [{ quality: 'hd' }, { keyframes_only: 'yes' }]) {
      const error = v.client.next('errorReply');
      v.client.send({ command: 'subscribe', topic: 'stream', monitor_id: 1, codec: 'auto', ...bad });
      const [reply]: [ErrorReply] = await error;
      expect(reply.code).toBe('bad_request');
    }
    await v.client.close();
  });

  it('reports the sub-stream in the status reply', async () => {
    const v = await viewer();
    const status = await until(async () => {
      const next = v.client.next('status');
      v.client.send({ command: 'status', monitor_id: 1 });
      const [s]: [StatusReply] = await next;
      if (!s.sub?.connected) await sleep(100);
      return s.sub?.connected ? s : undefined;
    }, 20_000, 'sub-stream connected in the status');
    expect(status).toMatchObject({ connected: true, width: 320, height: 240, sub: { connected: true, online: true, width: 160, height: 120 } });
    const other = v.client.next('status');
    v.client.send({ command: 'status', monitor_id: 2 });
    expect((await other)[0].sub).toBeNull();
    await v.client.close();
  });
});
