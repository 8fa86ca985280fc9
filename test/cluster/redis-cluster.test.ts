/**
 * zmcast on a real three-master Redis Cluster: monitors land on different
 * slots and nodes, the publish script stays legal (one hash tag per monitor),
 * and an edge serves several monitors at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from 'ioredis';
import { createRedis } from '../../shared/redis.js';
import { loadConfig } from '../../shared/config.js';
import { Publisher } from '../../services/capture/publisher.js';
import { ZmcastClient, type ReceivedPacket } from '../../client/zmcast-client.js';
import { startCluster, type LocalCluster } from '../helpers/redis-cluster.js';
import { listenEdge } from '../helpers/edge.js';
import { sleep, until } from '../helpers/wait.js';

let cluster: LocalCluster;
let redis: Cluster;
let served: Awaited<ReturnType<typeof listenEdge>>;
let url: string;

beforeAll(async () => {
  cluster = await startCluster();
  redis = createRedis(cluster.url) as Cluster;
  served = await listenEdge(redis, loadConfig({ env: {}, overrides: { auth: { mode: 'none' } } }));
  url = served.url;
}, 60_000);

afterAll(async () => {
  await served?.close();
  redis?.disconnect();
  await cluster?.stop();
});

describe('Redis Cluster', () => {
  it('publishes and fans out monitors that live on different cluster nodes', async () => {
    const monitors = [1, 2, 3, 4, 5, 6];
    const retention = { ...loadConfig({ env: {} }).retention, gops: 50 };
    const publishers = monitors.map((id) => new Publisher(redis, id, retention, { token: `cluster-test-${id}`, ttlMs: 60_000 }));
    for (const [i, p] of publishers.entries()) {
      await p.register(`Cluster ${monitors[i]}`);
      p.publishConfig({ codec: 'h264', codecString: 'avc1.42E01E', width: 320, height: 240, extradata: Buffer.alloc(0), generation: 1 });
    }
    const client = await ZmcastClient.connect(url);
    const got = new Map<number, ReceivedPacket[]>(monitors.map((id) => [id, []]));
    client.on('packet', (p) => got.get(p.monitorId)!.push(p));
    for (const id of monitors) {
      client.subscribeStream(id);
      await client.next('ack');
    }
    for (let seq = 0; seq < 30; seq++) {
      for (const p of publishers) {
        p.publishPacket({ data: Buffer.alloc(800, seq), keyframe: seq % 10 === 0, generation: 1, sequence: seq, captureTime: Date.now(), pts: 0n, dts: 0n, duration: 40_000 });
      }
      await sleep(10);
    }
    await Promise.all(publishers.map((p) => p.flush()));
    await until(() => [...got.values()].every((list) => list.length === 30), 15_000, 'packets from every monitor');
    for (const list of got.values()) expect(list.map((p) => p.sequence)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    const nodesUsed = new Set(await Promise.all(monitors.map((id) => redis.cluster('KEYSLOT', `zmcast:{m:${id}}:video`).then((slot) => nodeOfSlot(Number(slot))))));
    expect(nodesUsed.size).toBeGreaterThan(1);
    await client.close();
  });
});

async function nodeOfSlot(slot: number): Promise<string> {
  const slots = (await redis.cluster('SLOTS')) as unknown as [number, number, [string, number]][];
  const range = slots.find(([from, to]) => slot >= from && slot <= to)!;
  return `${range[2][0]}:${range[2][1]}`;
}
