import { afterEach, describe, expect, it } from 'vitest';
import { ZmcastClient, type ReceivedPacket } from '../../client/zmcast-client.js';
import { startEdge, PacketSource, type EdgeRig } from '../helpers/edge.js';
import { sleep, until } from '../helpers/wait.js';
import type { CodecReply } from '../../shared/protocol.js';

let rig: EdgeRig | undefined;
const clients: ZmcastClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await rig?.close();
  rig = undefined;
});

async function viewer(monitorId: number): Promise<{ client: ZmcastClient; packets: ReceivedPacket[]; codecs: CodecReply[]; order: string[] }> {
  const client = await ZmcastClient.connect(rig!.url);
  clients.push(client);
  const packets: ReceivedPacket[] = [];
  const codecs: CodecReply[] = [];
  const order: string[] = [];
  client.on('packet', (p) => { packets.push(p); order.push('packet'); });
  client.on('codec', (c) => { codecs.push(c); order.push('codec'); });
  client.subscribeStream(monitorId);
  await client.next('ack');
  return { client, packets, codecs, order };
}

describe('fan-out', () => {
  it('gives each viewer the codec config, then a keyframe-first stream, in order', async () => {
    rig = await startEdge();
    const cam = new PacketSource(rig.redis, 1, { gop: 10, size: 2000 });
    await cam.register();
    await cam.publish(5); // a GOP in progress before anyone watches
    const a = await viewer(1);
    const b = await viewer(1);
    await cam.publish(30);
    await until(() => a.packets.length >= 35 && b.packets.length >= 35, 10_000, 'packets');
    for (const v of [a, b]) {
      expect(v.order[0]).toBe('codec');
      expect(v.codecs[0]).toMatchObject({ codec: 'h264', codec_string: 'avc1.42E01E', width: 320, monitor_id: 1 });
      expect(v.packets[0].keyframe).toBe(true);
      expect(v.packets.map((p) => p.sequence)).toEqual(Array.from({ length: 35 }, (_, i) => i));
      expect(v.packets[7].data.readUInt32BE(0)).toBe(7);
    }
  });

  it('starts a late joiner at the latest keyframe with codec config first', async () => {
    rig = await startEdge();
    const cam = new PacketSource(rig.redis, 2, { gop: 10, size: 1000 });
    await cam.register();
    const early = await viewer(2);
    await cam.publish(25); // keyframes at 0, 10, 20
    await until(() => early.packets.length === 25, 10_000, 'early viewer');
    const t0 = performance.now();
    const late = await viewer(2);
    await until(() => late.packets.length >= 5, 5_000, 'late viewer');
    const firstFrameMs = performance.now() - t0;
    expect(late.order[0]).toBe('codec');
    expect(late.packets.map((p) => p.sequence)).toEqual([20, 21, 22, 23, 24]);
    expect(late.packets[0].keyframe).toBe(true);
    expect(firstFrameMs).toBeLessThan(2000); // generous: the number that matters is in docs/performance.md
  });

  it('streams live to the first viewer of a fresh edge without a stall, even when it subscribed to events first', async () => {
    rig = await startEdge();
    const cam = new PacketSource(rig.redis, 5, { gop: 25, size: 500 });
    await cam.register();
    cam.start(25);
    await sleep(300);
    const client = await ZmcastClient.connect(rig.url);
    clients.push(client);
    const packets: ReceivedPacket[] = [];
    client.on('packet', (p) => packets.push(p));
    // Events first: the edge's reader is then blocked on the events stream alone when video is added.
    client.subscribeEvents(5);
    await client.next('ack');
    const subscribed = Date.now();
    client.subscribeStream(5);
    await client.next('ack');
    await sleep(2500);
    await cam.stop();
    const live = packets.filter((p) => p.captureTime >= subscribed);
    expect(live.length).toBeGreaterThan(40);
    const seqs = packets.map((p) => p.sequence);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => seqs[0] + i));
    const worstWait = Math.max(...live.map((p) => p.receivedAt - p.captureTime));
    expect(worstWait).toBeLessThan(500); // was 4.6 s: the read blocked on events alone until its 5 s timeout
  });

  it('serves a first viewer from Redis when the edge was not yet following the monitor', async () => {
    rig = await startEdge();
    const cam = new PacketSource(rig.redis, 3, { gop: 4, size: 500 });
    await cam.register();
    await cam.publish(10); // keyframes at 0, 4, 8
    const v = await viewer(3);
    await until(() => v.packets.length >= 2, 5_000, 'first viewer');
    expect(v.packets.map((p) => p.sequence)).toEqual([8, 9]);
    await cam.publish(3);
    await until(() => v.packets.length >= 5, 5_000, 'live packets');
    expect(v.packets.map((p) => p.sequence)).toEqual([8, 9, 10, 11, 12]);
  });

  it('skips a slow viewer to keyframes, then closes it, while a fast viewer of the same monitor loses nothing', async () => {
    rig = await startEdge({ edge: { softLimitBytes: 256 * 1024, hardLimitBytes: 1024 * 1024, hardLimitMs: 1500 } });
    const cam = new PacketSource(rig.redis, 4, { gop: 10, size: 60_000 });
    await cam.register();
    const fast = await viewer(4);
    const slow = await viewer(4);
    const slowDropped: number[] = [];
    const fastDropped: unknown[] = [];
    fast.client.on('dropped', (d) => fastDropped.push(d));
    slow.client.on('dropped', (d) => slowDropped.push(d.count));
    const closed = new Promise<number>((resolve) => slow.client.once('close', (code) => resolve(code)));
    slow.client.ws.pause(); // stops reading: the kernel buffers fill, then the edge's send queue
    cam.start(100);
    await until(async () => /dropped_clients_total\{reason="slow_consumer"\} [1-9]/.test(await (await fetch(`${rig!.adminUrl}/metrics`)).text()), 30_000, 'slow viewer to be closed');
    await cam.stop();
    slow.client.ws.resume(); // reads what was queued, then the close frame
    const code = await Promise.race([closed, sleep(10_000).then(() => -1)]);
    const sent = cam.sequence;
    await until(() => fast.packets.length === sent || fastDropped.length > 0, 15_000, 'fast viewer to get every packet');
    expect(fastDropped).toEqual([]);
    expect(code).toBe(4008);
    expect(fast.packets.map((p) => p.sequence)).toEqual(Array.from({ length: sent }, (_, i) => i));
    const text = await (await fetch(`${rig.adminUrl}/metrics`)).text();
    expect(text).toMatch(/zmcast_edge_dropped_clients_total\{reason="slow_consumer"\} [1-9]/);
    expect(text).toMatch(/zmcast_edge_dropped_frames_total\{monitor="4"\} [1-9]/);
  });

  it('tells a slow viewer how many packets it missed and resumes it at a keyframe', async () => {
    rig = await startEdge({ edge: { softLimitBytes: 256 * 1024, hardLimitBytes: 64 * 1024 * 1024, hardLimitMs: 60_000 } });
    const cam = new PacketSource(rig.redis, 5, { gop: 10, size: 60_000 });
    await cam.register();
    const slow = await viewer(5);
    const dropped: number[] = [];
    slow.client.on('dropped', (d) => dropped.push(d.count));
    slow.client.ws.pause();
    cam.start(100);
    await until(async () => (await (await fetch(`${rig!.adminUrl}/metrics`)).text()).includes('zmcast_edge_dropped_frames_total{monitor="5"}'), 15_000, 'drops');
    slow.client.ws.resume();
    await until(() => dropped.length > 0, 15_000, 'a dropped notice');
    await cam.stop();
    expect(dropped[0]).toBeGreaterThan(0);
    // After each notice the next packet is a keyframe, so the stream stays decodable.
    const seqs = slow.packets.map((p) => p.sequence);
    const gaps = seqs.slice(1).map((s, i) => [seqs[i], s]).filter(([a, b]) => b !== a + 1);
    expect(gaps.length).toBeGreaterThan(0);
    for (const [, resumedAt] of gaps) expect(resumedAt % 10).toBe(0);
  });

  it('keeps Redis commands per second flat from 1 to 50 viewers', async () => {
    rig = await startEdge();
    const cam = new PacketSource(rig.redis, 6, { gop: 25, size: 5000 });
    await cam.register();
    const probe = rig.redis.duplicate();
    const commandsDuring = async (ms: number) => {
      const before = await totalCommands(probe);
      await sleep(ms);
      return (await totalCommands(probe)) - before;
    };
    cam.start(25);
    const viewers = [await viewer(6)];
    await sleep(500);
    const one = await commandsDuring(3000);
    for (let i = 0; i < 49; i++) viewers.push(await viewer(6));
    await sleep(500);
    const fifty = await commandsDuring(3000);
    await cam.stop();
    probe.disconnect();
    // Publisher: ~75 packets in 3 s; the edge's reads add at most one per packet. Viewers add nothing.
    expect(fifty).toBeLessThan(one * 1.25 + 10);
    for (const v of viewers) expect(v.packets.length).toBeGreaterThan(50);
  });
});

async function totalCommands(redis: import('ioredis').Redis): Promise<number> {
  const info = await redis.info('stats');
  return Number(/total_commands_processed:(\d+)/.exec(info)![1]);
}
