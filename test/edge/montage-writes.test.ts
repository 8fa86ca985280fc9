import { afterEach, describe, expect, it } from 'vitest';
import { ZmcastClient, type ReceivedPacket } from '../../client/zmcast-client.js';
import { startEdge, PacketSource, type EdgeRig } from '../helpers/edge.js';
import { metricValue } from '../helpers/metrics.js';
import { sleep, until } from '../helpers/wait.js';

let rig: EdgeRig | undefined;
const clients: ZmcastClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await rig?.close();
  rig = undefined;
});

interface Watcher {
  client: ZmcastClient;
  packets: ReceivedPacket[];
  /** 'codec:<id>' and 'packet:<id>' in arrival order. */
  order: string[];
}

/** One socket subscribed to every monitor in `ids`. */
async function watch(ids: number[]): Promise<Watcher> {
  const client = await ZmcastClient.connect(rig!.url);
  clients.push(client);
  const packets: ReceivedPacket[] = [];
  const order: string[] = [];
  client.on('packet', (p) => { packets.push(p); order.push(`packet:${p.monitorId}`); });
  client.on('codec', (c) => order.push(`codec:${c.monitor_id}`));
  for (const id of ids) {
    const acked = client.next('ack');
    client.subscribeStream(id);
    await acked;
  }
  return { client, packets, order };
}

async function cameras(ids: number[], size: number): Promise<PacketSource[]> {
  const cams = ids.map((id) => new PacketSource(rig!.redis, id, { gop: 10, size }));
  for (const c of cams) await c.register();
  return cams;
}

/** One frame time of every camera, published together as synchronized cameras would. */
async function tick(cams: PacketSource[]): Promise<void> {
  for (const c of cams) c.publishOne();
  await Promise.all(cams.map((c) => c.publisher.flush()));
}

const sequencesOf = (w: Watcher, id: number) => w.packets.filter((p) => p.monitorId === id).map((p) => p.sequence);
const coalesced = async () => ({ writes: await metricValue('zmcast_edge_coalesced_writes_total'), frames: await metricValue('zmcast_edge_coalesced_frames_total') });

describe('montage sockets', () => {
  it('get the frames of several monitors in shared writes, each monitor in order and after its codec config', async () => {
    rig = await startEdge({ edge: { coalesceMs: 5 } });
    const ids = [11, 12, 13, 14];
    const cams = await cameras(ids, 4000);
    const montage = await watch(ids);
    const before = await coalesced();
    const ticks = 30;
    for (let i = 0; i < ticks; i++) {
      await tick(cams);
      await sleep(40);
    }
    await until(() => ids.every((id) => sequencesOf(montage, id).length === ticks), 10_000, 'every packet of every monitor');
    const after = await coalesced();
    const writes = after.writes - before.writes;
    const frames = after.frames - before.frames;
    // 4 monitors × 30 frames went through the coalescing writer, and shared writes: far fewer writes than frames.
    expect(frames).toBe(ids.length * ticks);
    expect(writes).toBeLessThan(frames / 2);
    for (const id of ids) {
      expect(sequencesOf(montage, id)).toEqual(Array.from({ length: ticks }, (_, i) => i));
      expect(montage.order.indexOf(`codec:${id}`)).toBeLessThan(montage.order.indexOf(`packet:${id}`));
    }
  });

  it('write a single-monitor socket\'s frames at once (through the native writer), and coalesce nothing when coalescing is off', async () => {
    rig = await startEdge({ edge: { coalesceMs: 0 } });
    const cams = await cameras([21, 22], 2000);
    const single = await watch([21]);
    const montage = await watch([21, 22]);
    const before = await coalesced();
    const nativeBefore = await metricValue('zmcast_edge_native_writes_total');
    for (let i = 0; i < 10; i++) await tick(cams);
    await until(() => single.packets.length === 10 && montage.packets.length === 20, 10_000, 'packets');
    expect(await coalesced()).toEqual(before);
    expect(await metricValue('zmcast_edge_native_writes_total') - nativeBefore).toBeGreaterThanOrEqual(10);
    expect(sequencesOf(montage, 22)).toEqual(Array.from({ length: 10 }, (_, i) => i));
  });

  it('still close a montage viewer that stops reading, while another montage viewer loses nothing', async () => {
    rig = await startEdge({ edge: { coalesceMs: 5, softLimitBytes: 256 * 1024, hardLimitBytes: 1024 * 1024, hardLimitMs: 1500 } });
    const ids = [31, 32];
    const cams = await cameras(ids, 60_000);
    const fast = await watch(ids);
    const slow = await watch(ids);
    const fastDropped: unknown[] = [];
    fast.client.on('dropped', (d) => fastDropped.push(d));
    const closed = new Promise<number>((resolve) => slow.client.once('close', (code) => resolve(code)));
    slow.client.ws.pause();
    const closedBefore = await metricValue('zmcast_edge_dropped_clients_total', { reason: 'slow_consumer' });
    let sent = 0;
    while ((await metricValue('zmcast_edge_dropped_clients_total', { reason: 'slow_consumer' })) === closedBefore && sent < 2000) {
      await tick(cams);
      sent++;
      await sleep(10);
    }
    expect(sent).toBeLessThan(2000);
    slow.client.ws.resume();
    expect(await Promise.race([closed, sleep(15_000).then(() => -1)])).toBe(4008);
    await until(() => fast.packets.length === 2 * sent || fastDropped.length > 0, 15_000, 'fast viewer to get every packet');
    expect(fastDropped).toEqual([]);
    for (const id of ids) expect(sequencesOf(fast, id)).toEqual(Array.from({ length: sent }, (_, i) => i));
  });
});
