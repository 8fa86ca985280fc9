import { afterEach, describe, expect, it, vi } from 'vitest';
import { ZmcastClient, type ReceivedPacket } from '../../client/zmcast-client.js';
import { VideoSubscription } from '../../services/edge/video-subscription.js';
import { startEdge, PacketSource, type EdgeRig } from '../helpers/edge.js';
import { metricValue } from '../helpers/metrics.js';
import { until } from '../helpers/wait.js';
import type { DroppedReply } from '../../shared/protocol.js';

// A channel writes packets to viewers that are in step itself, without calling their
// subscriptions (video-channel.ts, the fast lane). These prove it does, and that everything
// a subscription decides still holds: keyframes, missed packets, montage coalescing.

let rig: EdgeRig | undefined;
const clients: ZmcastClient[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await rig?.close();
  rig = undefined;
});

async function viewer(...ids: number[]): Promise<{ client: ZmcastClient; packets: ReceivedPacket[]; dropped: DroppedReply[] }> {
  const client = await ZmcastClient.connect(rig!.url);
  clients.push(client);
  const packets: ReceivedPacket[] = [];
  const dropped: DroppedReply[] = [];
  client.on('packet', (p) => packets.push(p));
  client.on('dropped', (d) => dropped.push(d));
  for (const id of ids) {
    const acked = client.next('ack');
    client.subscribeStream(id);
    await acked;
  }
  return { client, packets, dropped };
}

const seqs = (packets: ReceivedPacket[], monitorId = 1) => packets.filter((p) => p.monitorId === monitorId).map((p) => p.sequence);

describe('the fast lane', () => {
  it('writes in-step viewers every packet in order, calling their subscriptions only for keyframes', async () => {
    rig = await startEdge();
    const cam = new PacketSource(rig.redis, 1, { gop: 10, size: 3000 });
    await cam.register();
    const viewers = [await viewer(1), await viewer(1), await viewer(1)];
    await cam.publish(1);
    await until(() => viewers.every((v) => v.packets.length === 1), 5000, 'the first keyframe');
    const sentBefore = await metricValue('zmcast_edge_sent_frames_total');
    const deliver = vi.spyOn(VideoSubscription.prototype, 'deliver');
    await cam.publish(29); // keyframes at 10 and 20
    await until(() => viewers.every((v) => v.packets.length === 30), 5000, '30 packets each');
    for (const v of viewers) expect(seqs(v.packets)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    // Called for the two keyframes (3 viewers each), not for the 27 other packets.
    expect(deliver.mock.calls.length).toBeLessThanOrEqual(6 + 3);
    expect(await metricValue('zmcast_edge_sent_frames_total')).toBe(sentBefore + 29 * 3);
  });

  it('writes nothing more to a viewer told it missed packets until the next keyframe', async () => {
    rig = await startEdge();
    const cam = new PacketSource(rig.redis, 1, { gop: 10, size: 3000 });
    await cam.register();
    const v = await viewer(1);
    await cam.publish(5);
    await until(() => v.packets.length === 5, 5000, 'packets 0-4');
    cam.sequence += 2; // packets 5 and 6 never reach Redis
    await cam.publish(18); // 7 … 24
    await until(() => seqs(v.packets).includes(24), 5000, 'packet 24');
    expect(v.dropped).toEqual([expect.objectContaining({ count: 2, reason: 'upstream' })]);
    expect(seqs(v.packets)).toEqual([0, 1, 2, 3, 4, ...Array.from({ length: 15 }, (_, i) => 10 + i)]);
  });

  it('stops writing a viewer itself once its socket becomes a coalescing montage', async () => {
    rig = await startEdge({ edge: { coalesceMs: 5 } });
    const one = new PacketSource(rig.redis, 1, { gop: 10, size: 3000 });
    const two = new PacketSource(rig.redis, 2, { gop: 10, size: 3000 });
    await one.register();
    await two.register();
    const v = await viewer(1);
    await one.publish(3);
    await until(() => v.packets.length === 3, 5000, 'monitor 1 in step');
    const acked = v.client.next('ack');
    v.client.subscribeStream(2);
    await acked;
    const coalescedBefore = await metricValue('zmcast_edge_coalesced_frames_total');
    await one.publish(6); // 3 … 8: no keyframe, so only the lane's own check keeps them from going straight out
    await until(() => seqs(v.packets).length === 9, 5000, 'monitor 1 packets 3-8');
    expect(seqs(v.packets)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(await metricValue('zmcast_edge_coalesced_frames_total')).toBeGreaterThanOrEqual(coalescedBefore + 6);
  });
});
