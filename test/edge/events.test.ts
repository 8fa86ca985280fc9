import { afterEach, describe, expect, it } from 'vitest';
import { ZmcastClient } from '../../client/zmcast-client.js';
import { startEdge, PacketSource, type EdgeRig } from '../helpers/edge.js';
import { sleep, until } from '../helpers/wait.js';
import type { EventReply } from '../../shared/protocol.js';

const rigs: EdgeRig[] = [];
const clients: ZmcastClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(rigs.splice(0).map((r) => r.close()));
});

async function eventsViewer(rig: EdgeRig, monitorId: number, since?: string) {
  const client = await ZmcastClient.connect(rig.url);
  clients.push(client);
  const events: EventReply[] = [];
  client.on('event', (e) => events.push(e));
  client.subscribeEvents(monitorId, since);
  await client.next('ack');
  return { client, events };
}

describe('events', () => {
  it('delivers live events to every subscriber, in order', async () => {
    const rig = await startEdge();
    rigs.push(rig);
    const cam = new PacketSource(rig.redis, 1, { gop: 10, size: 100 });
    await cam.register();
    const a = await eventsViewer(rig, 1);
    const b = await eventsViewer(rig, 1);
    for (let i = 0; i < 5; i++) cam.publisher.event('capture_failed', `failure ${i}`, 1);
    await cam.publisher.flush();
    await until(() => a.events.length === 5 && b.events.length === 5, 5000, 'events');
    expect(a.events.map((e) => e.message)).toEqual(['failure 0', 'failure 1', 'failure 2', 'failure 3', 'failure 4']);
    expect(a.events[0]).toMatchObject({ type: 'event', monitor_id: 1, event: 'capture_failed', generation: 1 });
    expect(b.events.map((e) => e.id)).toEqual(a.events.map((e) => e.id));
  });

  it('resumes by id on another edge with nothing lost and nothing repeated', async () => {
    const edgeA = await startEdge();
    const edgeB = await startEdge({}, edgeA.redisUrl); // a second edge on the same Redis
    rigs.push(edgeA, edgeB);
    const cam = new PacketSource(edgeA.redis, 7, { gop: 10, size: 100 });
    await cam.register();
    const first = await eventsViewer(edgeA, 7);
    let n = 0;
    const emit = (count: number) => { for (let i = 0; i < count; i++) cam.publisher.event('connection_failed', `e${n++}`, 1); };
    emit(10);
    await cam.publisher.flush();
    await until(() => first.events.length === 10, 5000, 'first batch');
    const lastSeen = first.events[first.events.length - 1].id;
    await first.client.close();
    emit(10); // missed while disconnected
    await cam.publisher.flush();
    const resumed = await eventsViewer(edgeB, 7, lastSeen);
    emit(10); // live again, and some may race the catch-up read
    await cam.publisher.flush();
    await until(() => resumed.events.length >= 20, 5000, 'resumed events');
    await sleep(200);
    expect(resumed.events.map((e) => e.message)).toEqual(Array.from({ length: 20 }, (_, i) => `e${i + 10}`));
  });

  it('never repeats or drops events that arrive while the catch-up read is running', async () => {
    const rig = await startEdge();
    rigs.push(rig);
    const cam = new PacketSource(rig.redis, 8, { gop: 10, size: 100 });
    await cam.register();
    const live = await eventsViewer(rig, 8); // keeps the edge following the monitor
    let n = 0;
    const timer = setInterval(() => cam.publisher.event('capture_resumed', `r${n++}`, 1), 2);
    await sleep(100);
    const since = live.events[0].id;
    const resumed = await eventsViewer(rig, 8, since);
    await sleep(200);
    clearInterval(timer);
    await cam.publisher.flush();
    await until(() => live.events.length === n, 5000, 'live events');
    await until(() => resumed.events.length === n - 1, 5000, 'resumed events');
    expect(resumed.events.map((e) => e.id)).toEqual(live.events.slice(1).map((e) => e.id));
  });
});

describe('events beyond retention', () => {
  it('says so when since is older than what is retained, then replays what is left', async () => {
    const rig = await startEdge({ retention: { events: 10 } });
    rigs.push(rig);
    const cam = new PacketSource(rig.redis, 9, { gop: 10, size: 100, retention: { events: 10 } });
    await cam.register();
    const first = await eventsViewer(rig, 9);
    cam.publisher.event('connected', 'e0', 1);
    await cam.publisher.flush();
    await until(() => first.events.length === 1, 5000, 'first event');
    const since = first.events[0].id;
    await first.client.close();
    // Exact trimming (the publisher trims approximately), as if retention had moved on.
    for (let i = 1; i <= 30; i++) await rig.redis.xadd('zmcast:{m:9}:events', 'MAXLEN', '5', '*', 'e', JSON.stringify({ event: 'capture_failed', message: `e${i}`, time: Date.now(), generation: 1 }));
    const client = await ZmcastClient.connect(rig.url);
    clients.push(client);
    const order: string[] = [];
    client.on('errorReply', (e) => order.push(e.code));
    client.on('event', (e) => order.push(e.message));
    client.subscribeEvents(9, since);
    await until(() => order.length === 6, 5000, 'notice and retained events');
    expect(order).toEqual(['events_expired', 'e26', 'e27', 'e28', 'e29', 'e30']);
  });
});
