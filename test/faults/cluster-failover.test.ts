/**
 * Fault drill: a Redis Cluster master killed with kill -9 under a real
 * capture and a real edge. The cluster promotes the master's replica; capture
 * and edge find the new master by themselves and a viewer gets video again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZmcastClient, type ReceivedPacket } from '../../client/zmcast-client.js';
import { monitorKeys } from '../../shared/redis-keys.js';
import { startCluster, type LocalCluster } from '../helpers/redis-cluster.js';
import { until } from '../helpers/wait.js';
import { cameras, getJson, startCapture, startEdge, type Zmcast } from './rig.js';

let cluster: LocalCluster;
let capture: Zmcast;
let edge: Awaited<ReturnType<typeof startEdge>>;

beforeAll(async () => {
  cluster = await startCluster({ replicas: 1 });
  capture = startCapture(cluster.url, cameras([1, 2, 3]));
  edge = await startEdge(cluster.url);
  await until(async () => (await getJson<unknown[]>(`${edge.url}/monitors`)).body.length === 3, 20_000, 'the monitors registered');
}, 60_000);

afterAll(async () => {
  await capture?.kill();
  await edge?.kill();
  await cluster?.stop();
});

describe('fault drill: a Redis Cluster master killed', () => {
  it('resumes video once the replica is promoted, without restarting anything', async () => {
    const viewer = await ZmcastClient.connect(edge.url);
    const packets: ReceivedPacket[] = [];
    viewer.on('packet', (p) => packets.push(p));
    viewer.subscribeStream(1);
    await until(() => packets.length >= 25, 20_000, 'video before the drill');

    const master = cluster.masterOf(monitorKeys(1).video);
    await cluster.kill(master);
    const killedAt = Date.now();
    await until(() => packets.some((p) => p.captureTime > killedAt + 500 && p.receivedAt > killedAt), 30_000, 'video after the failover');
    const resumedMs = Date.now() - killedAt;
    expect(cluster.masterOf(monitorKeys(1).video)).not.toBe(master);
    const seen = packets.length;
    await until(() => packets.length >= seen + 25, 10_000, 'video flowing on the promoted replica');
    console.log(`drill cluster-master-kill: video again ${resumedMs} ms after the master of monitor 1 was killed`);
    expect(resumedMs).toBeLessThan(20_000);
    expect(capture.child.exitCode).toBeNull();
    expect(edge.child.exitCode).toBeNull();
    await viewer.close();
  });
});
