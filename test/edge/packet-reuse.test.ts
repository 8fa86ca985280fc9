/**
 * Packet memory is reused (packet-memory.ts), so a holder the edge forgot to
 * pin would send one camera's bytes as another packet, or poison. A real edge
 * on real Redis, with every kind of viewer that holds packets differently:
 * the fast lane, a montage that coalesces, ZoneMinder's format, a viewer too
 * slow to read, and one-shot requests. Every byte each gets must be the
 * packet it says it is, and memory must actually have been reused.
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ZmcastClient, type ReceivedPacket } from '../../client/zmcast-client.js';
import { decodePacket, encodePacket, type Packet } from '../../shared/packet.js';
import { startEdge, PacketSource, type EdgeRig } from '../helpers/edge.js';
import { metricValue } from '../helpers/metrics.js';
import { sleep, until } from '../helpers/wait.js';

const SIZE = 20_000;
const BURSTS = 100;
const PER_BURST = 8;

let rig: EdgeRig | undefined;
const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  await rig?.close();
  rig = undefined;
});

async function viewer(...ids: number[]): Promise<{ client: ZmcastClient; packets: ReceivedPacket[] }> {
  const client = await ZmcastClient.connect(rig!.url);
  closers.push(() => client.close());
  const packets: ReceivedPacket[] = [];
  client.on('packet', (p) => packets.push(p));
  for (const id of ids) {
    const acked = client.next('ack');
    client.subscribeStream(id);
    await acked;
  }
  return { client, packets };
}

/** A client of ZoneMinder's per-monitor endpoint: its binary messages, in order. */
async function zmViewer(id: number): Promise<{ ws: WebSocket; binaries: Buffer[] }> {
  const ws = new WebSocket(`${rig!.url.replace('http', 'ws')}/monitors/${id}/ws`);
  closers.push(() => ws.terminate());
  const binaries: Buffer[] = [];
  ws.on('message', (data, isBinary) => isBinary && binaries.push(data as Buffer));
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  return { ws, binaries };
}

/** What PacketSource published as this packet: the sequence, then its low byte repeated. */
function expectIntact(p: Packet, where: string): void {
  const what = `${where}: monitor ${p.monitorId} packet ${p.sequence}`;
  expect(p.data.length, what).toBe(SIZE);
  expect(p.data.readUInt32BE(0), what).toBe(p.sequence);
  expect(p.data.subarray(4).every((b) => b === (p.sequence & 0xff)), what).toBe(true);
  expect(p.duration, what).toBe(40_000);
  expect(p.pts, what).toBe(BigInt(p.sequence * 40_000));
}

/** Every packet intact, of the monitors subscribed to, each monitor's in rising order. */
function expectInOrder(packets: Packet[], monitors: number[], where: string): void {
  const last = new Map<number, number>();
  for (const p of packets) {
    expectIntact(p, where);
    expect(monitors, `${where}: a packet of monitor ${p.monitorId}`).toContain(p.monitorId);
    expect(p.sequence, `${where}: monitor ${p.monitorId} packet ${p.sequence} after ${last.get(p.monitorId)}`).toBeGreaterThan(last.get(p.monitorId) ?? -1);
    last.set(p.monitorId, p.sequence);
  }
}

/** ZoneMinder's bytes: the codec payload alone, extradata (14 bytes here) in front on keyframes. */
const codecPayload = (bytes: Buffer) => (bytes.length === SIZE ? bytes : bytes.subarray(14));

function expectIntactCodecBytes(bytes: Buffer, where: string): number {
  const data = codecPayload(bytes);
  const sequence = data.readUInt32BE(0);
  expect(data.length, `${where} ${sequence}`).toBe(SIZE);
  expect(data.subarray(4).every((b) => b === (sequence & 0xff)), `${where} ${sequence}`).toBe(true);
  return sequence;
}

describe('reused packet memory', () => {
  it('reaches every kind of viewer intact: fast lane, montage, ZoneMinder, a slow viewer and one-shots', async () => {
    rig = await startEdge({ edge: { coalesceMs: 5 } });
    const cams = [1, 2].map((id) => new PacketSource(rig!.redis, id, { gop: 5, size: SIZE }));
    for (const cam of cams) await cam.register();
    for (const cam of cams) await cam.publish(1);
    const single = await viewer(1);
    const montage = await viewer(1, 2);
    const slow = await viewer(2);
    slow.client.ws.pause(); // reads nothing until the end: the edge's writes to it queue (and are pinned)
    const zm = await zmViewer(1);
    zm.ws.send(JSON.stringify({ command: 'subscribe', topic: 'stream', codec: 'h264' }));
    const oneShots = await zmViewer(2);
    const reusedBefore = await metricValue('zmcast_edge_packet_memory_total', { source: 'reused' });

    for (let burst = 0; burst < BURSTS; burst++) {
      for (const cam of cams) await cam.publish(PER_BURST);
      oneShots.ws.send(JSON.stringify({ command: 'stream', codec: 'h264' }));
      await sleep(15);
    }
    const last = 1 + BURSTS * PER_BURST - 1;
    const has = (packets: ReceivedPacket[], id: number) => packets.some((p) => p.monitorId === id && p.sequence === last);
    const zmHasLast = () => zm.binaries.length > 0 && codecPayload(zm.binaries[zm.binaries.length - 1]).readUInt32BE(0) === last;
    await until(() => has(single.packets, 1) && has(montage.packets, 1) && has(montage.packets, 2) && zmHasLast() || undefined, 20_000, 'the last packets');
    await until(() => oneShots.binaries.length >= BURSTS || undefined, 20_000, 'every one-shot');
    slow.client.ws.resume();
    let before = -1;
    await until(() => {
      const settled = slow.packets.length === before; // nothing more came since the last look
      before = slow.packets.length;
      return settled || undefined;
    }, 10_000, 'the slow viewer to read what was queued for it');

    // Intact, and each its own: reused memory holding a later packet would look intact but arrive out of order.
    expectInOrder(single.packets, [1], 'fast lane');
    expectInOrder(montage.packets, [1, 2], 'montage');
    expectInOrder(slow.packets, [2], 'slow viewer');
    const zmSequences = zm.binaries.map((b) => expectIntactCodecBytes(b, 'ZoneMinder'));
    for (const b of oneShots.binaries) expect(expectIntactCodecBytes(b, 'one-shot') % 5).toBe(0); // keyframes
    expect(single.packets.map((p) => p.sequence)).toEqual(Array.from({ length: last + 1 }, (_, i) => i));
    expect(zmSequences).toEqual(Array.from({ length: zmSequences.length }, (_, i) => last - zmSequences.length + 1 + i));
    // It got video, and packets were skipped for it: so frames did wait in Node's queue for it.
    expect(slow.packets.length).toBeGreaterThan(0);
    expect(await metricValue('zmcast_edge_dropped_frames_total', { monitor: '2' })).toBeGreaterThan(0);
    // Else this test proved nothing: most packets' memory came back and was taken again.
    expect(await metricValue('zmcast_edge_packet_memory_total', { source: 'reused' }) - reusedBefore).toBeGreaterThan(BURSTS * PER_BURST);
  });
});

// Guards a helper of this file against rot: the check above must catch a foreign packet.
describe('the intact check', () => {
  it('fails for a packet whose bytes are another packet\'s, or that arrives again or for another monitor', () => {
    const packet = (monitorId: number, sequence: number, fill = sequence) => {
      const data = Buffer.alloc(SIZE, fill);
      data.writeUInt32BE(sequence, 0);
      return decodePacket(encodePacket({ data, keyframe: false, monitorId, generation: 1, sequence, captureTime: 0, pts: BigInt(sequence * 40_000), dts: 0n, duration: 40_000 }));
    };
    expect(() => expectInOrder([packet(1, 7), packet(1, 8)], [1], 'good')).not.toThrow();
    expect(() => expectInOrder([packet(1, 8, 7)], [1], 'forged')).toThrow();
    expect(() => expectInOrder([packet(1, 8), packet(1, 7)], [1], 'back in time')).toThrow();
    expect(() => expectInOrder([packet(1, 8), packet(2, 9)], [1], 'foreign')).toThrow();
  });
});
