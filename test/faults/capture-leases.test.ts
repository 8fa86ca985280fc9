/**
 * Fault drills for capture: processes given the same monitors share them
 * through leases; one killed with kill -9 is replaced within 10 s; one that
 * was paused past its lease is fenced and cannot write into the stream.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZmcastClient, type ReceivedPacket } from '../../client/zmcast-client.js';
import { configFromJson, type CodecConfig } from '../../shared/codec.js';
import type { EventReply, StatusReply } from '../../shared/protocol.js';
import { probeAnnexB } from '../fixtures/capture-stream.js';
import { sleep, until } from '../helpers/wait.js';
import { DrillRedis, cameras, getJson, startCapture, startEdge, type Zmcast } from './rig.js';

let redis: DrillRedis;
let edge: Awaited<ReturnType<typeof startEdge>>;
const captures: Zmcast[] = [];

beforeAll(async () => {
  redis = await DrillRedis.start();
  edge = await startEdge(redis.url);
});

afterAll(async () => {
  for (const c of captures) await c.kill();
  await edge?.kill();
  await redis?.kill();
});

/** Paced, so polling stays under the edge's command rate limit. */
async function status(client: ZmcastClient, id: number): Promise<StatusReply> {
  await sleep(50);
  client.send({ command: 'status', monitor_id: id });
  return (await client.next('status'))[0];
}

function capture(node: string, ids: number[]): Zmcast {
  const c = startCapture(redis.url, cameras(ids), { ZMCAST_CAPTURE_NODE: node, ZMCAST_STATUS_INTERVAL_MS: '500' });
  captures.push(c);
  return c;
}

/** Everything a viewer got, split by generation, with the config that opened each. */
function recordings(packets: ReceivedPacket[], configs: Map<number, CodecConfig>) {
  const byGeneration = new Map<number, ReceivedPacket[]>();
  for (const p of packets) byGeneration.set(p.generation, [...(byGeneration.get(p.generation) ?? []), p]);
  return [...byGeneration].map(([generation, ps]) => ({ generation, packets: ps, config: configs.get(generation)! }));
}

describe('fault drill: capture processes in pool mode', () => {
  it('shares the monitors, and moves a killed process\'s monitor to the other within 10 s, as a new generation', async () => {
    const a = capture('node-a', [1, 2]);
    await sleep(1500);
    capture('node-b', [1, 2]);
    const probe = await ZmcastClient.connect(edge.url);
    await until(async () => {
      const nodes = [(await status(probe, 1)).capture_node, (await status(probe, 2)).capture_node].sort();
      return nodes[0] === 'node-a' && nodes[1] === 'node-b';
    }, 15_000, 'each node to capture one monitor');
    const onA = (await status(probe, 1)).capture_node === 'node-a' ? 1 : 2;

    const viewer = await ZmcastClient.connect(edge.url);
    const packets: ReceivedPacket[] = [];
    const events: EventReply[] = [];
    viewer.on('packet', (p) => packets.push(p));
    viewer.on('event', (e) => events.push(e));
    viewer.send({ command: 'subscribe', topic: 'events', monitor_id: onA });
    viewer.subscribeStream(onA);
    await until(() => packets.length >= 10, 10_000, 'video from node-a');
    const generationBefore = packets.at(-1)!.generation;

    await a.kill('SIGKILL');
    const killedAt = Date.now();
    // Status tells the truth at once: a record capture stopped refreshing is not "connected".
    await until(async () => !(await status(probe, onA)).connected, 5000, 'status to stop saying connected');
    const honestMs = Date.now() - killedAt;
    expect(honestMs).toBeLessThan(2500);
    await until(() => packets.some((p) => p.generation > generationBefore), 15_000, 'video of a new generation');
    const failoverMs = Date.now() - killedAt;
    const first = packets.find((p) => p.generation > generationBefore)!;
    expect(first.keyframe).toBe(true);
    await until(() => events.some((e) => e.event === 'capture_failover'), 5000, 'a capture_failover event');
    expect((await status(probe, onA)).capture_node).toBe('node-b');
    console.log(`drill capture-kill: status not connected after ${honestMs} ms; monitor ${onA} captured again after ${failoverMs} ms`);
    expect(failoverMs).toBeLessThan(10_000);
    await viewer.close();
    await probe.close();
  });

  it('gives a joining process its share without double capture, and hands a leaving one\'s monitors over at once', async () => {
    // node-b holds both monitors now (the previous test killed node-a).
    const probe = await ZmcastClient.connect(edge.url);
    const nodes = async () => [(await status(probe, 1)).capture_node, (await status(probe, 2)).capture_node];
    await until(async () => (await nodes()).every((n) => n === 'node-b'), 10_000, 'node-b to hold both monitors');
    const viewers = await Promise.all([1, 2].map(async (id) => {
      const v = await ZmcastClient.connect(edge.url);
      const packets: ReceivedPacket[] = [];
      v.on('packet', (p) => packets.push(p));
      v.subscribeStream(id);
      return { v, packets };
    }));
    const c = capture('node-c', [1, 2]);
    await until(async () => (await nodes()).sort().join() === 'node-b,node-c', 15_000, 'node-c to take its share');

    const b = captures.find((x) => x.logs().some((l) => l.process && String(l.process).startsWith('node-b/')))!;
    await b.kill('SIGTERM');
    const leftAt = Date.now();
    await until(async () => {
      const [s1, s2] = [await status(probe, 1), await status(probe, 2)];
      return s1.capture_node === 'node-c' && s2.capture_node === 'node-c' && s1.connected && s2.connected;
    }, 10_000, 'node-c to capture both monitors');
    const handOverMs = Date.now() - leftAt;
    await sleep(1000);
    for (const { v, packets } of viewers) {
      // One writer at a time: a monitor's generations follow each other, never interleave.
      const order = packets.map((p) => p.generation);
      expect(order).toEqual([...order].sort((x, y) => x - y));
      await v.close();
    }
    expect(c.child.exitCode).toBeNull();
    console.log(`drill capture-leave: a leaving process's monitors captured by the other after ${handOverMs} ms`);
    expect(handOverMs).toBeLessThan(5000);
    await probe.close();
  });
});

describe('fault drill: two capture processes configured for one monitor', () => {
  it('lets one write while the other waits, fences the first after a pause past its lease, and the stream decodes', async () => {
    const c = capture('node-c', [3]);
    await sleep(1000);
    const d = capture('node-d', [3]);
    const probe = await ZmcastClient.connect(edge.url);
    // Until capture registers it, `status` answers unknown_monitor (an error, not a status).
    await until(async () => (await getJson<{ id: number }[]>(`${edge.url}/monitors`)).body.some((m) => m.id === 3), 15_000, 'monitor 3 registered');
    await until(async () => (await status(probe, 3)).connected, 15_000, 'monitor 3 connected');
    const owner = (await status(probe, 3)).capture_node === 'node-c' ? c : d;
    const standby = owner === c ? d : c;

    const viewer = await ZmcastClient.connect(edge.url);
    const packets: ReceivedPacket[] = [];
    const configs = new Map<number, CodecConfig>();
    viewer.on('packet', (p) => packets.push(p));
    viewer.on('codec', (cfg) => configs.set(cfg.generation, configFromJson(cfg)));
    viewer.subscribeStream(3);
    await sleep(3000);
    // The standby writes nothing while the owner holds the lease.
    expect(new Set(packets.map((p) => p.generation)).size).toBe(1);

    owner.child.kill('SIGSTOP');
    await sleep(7000); // past the 5 s lease: the standby takes over
    owner.child.kill('SIGCONT');
    await until(() => owner.logs().some((l) => l.msg === 'another capture holds this monitor\'s lease; this one stops writing'
      || l.msg === 'lease lost to another capture process'), 10_000, 'the paused owner to learn it lost the lease');
    await sleep(2000);
    expect(standby.logs().some((l) => l.msg === 'took over a monitor from a capture process that stopped renewing its lease')).toBe(true);

    // One writer at a time: generations never interleave, and each one's sequence only grows.
    const order = packets.map((p) => p.generation);
    expect(order).toEqual([...order].sort((x, y) => x - y));
    const parts = recordings(packets, configs);
    expect(parts.length).toBeGreaterThanOrEqual(2);
    for (const part of parts) {
      const seqs = part.packets.map((p) => p.sequence);
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
      expect(part.packets[0].keyframe).toBe(true);
      const probed = probeAnnexB(part.config, part.packets);
      expect(probed.errors).toBe('');
      expect(probed.frames).toBe(part.packets.length);
    }
    await viewer.close();
    await probe.close();
  });
});
