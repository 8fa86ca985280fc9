/**
 * A right taken away while a command waits on Redis: `subscribe`, one-shot
 * `stream` and `status` check the permission when they arrive and again
 * right before they give anything, so a revalidation that lands in between
 * is not missed. Redis is paused (each command then waits its full second)
 * and the grant is removed by a reload during that wait.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mintToken } from '../../shared/auth/index.js';
import { DrillRedis } from '../faults/rig.js';
import { PacketSource, startEdge, type EdgeRig } from '../helpers/edge.js';
import { sleep } from '../helpers/wait.js';
import { isType, open } from './rig.js';

const secret = 'revocation-race-secret-revocation-race';
const carol = (monitors: number[]) => [{ name: 'carol', monitors, enabled: true, tokensNotBefore: 0 }];
let redis: DrillRedis;
let rig: EdgeRig;

beforeAll(async () => {
  redis = await DrillRedis.start();
  // Revalidation only when the configuration is reloaded, never on its own within the test.
  rig = await startEdge({ auth: { mode: 'config', secret, revalidateMs: 3_600_000, users: carol([1, 2]) } }, redis.url);
  const cam = new PacketSource(rig.redis, 1, { gop: 5, size: 100 });
  await cam.register();
  await cam.publish(5);
});

afterAll(async () => {
  redis?.resume();
  await rig?.close();
  await redis?.kill();
});

it('refuses what a revalidation took away while the command waited on Redis', async () => {
  const c = await open(rig.url, '/ws', { headers: { Authorization: `Bearer ${await mintToken('carol', secret, 600)}` } });
  await c.waitFor(isType('hello'));
  c.send({ command: 'status', monitor_id: 1, request_id: 'known' });
  await c.waitFor((m) => m.request_id === 'known'); // the edge now knows monitor 1 exists
  redis.pause();
  try {
    // One at a time: commands on a connection run in order, and one queued behind another would meet the new rights on arrival.
    for (const cmd of [
      { command: 'subscribe', topic: 'stream', codec: 'h264', monitor_id: 1, request_id: 'sub' },
      { command: 'stream', codec: 'h264', monitor_id: 1, request_id: 'shot' },
      { command: 'status', monitor_id: 1, request_id: 'status' },
    ]) {
      rig.edge.reload({ ...rig.config, auth: { ...rig.config.auth, users: carol([1, 2]) } });
      c.send(cmd);
      await sleep(200);
      rig.edge.reload({ ...rig.config, auth: { ...rig.config.auth, users: carol([2]) } });
      expect(await c.waitFor((m) => m.request_id === cmd.request_id, 5000), cmd.request_id).toMatchObject({ type: 'error', code: 'forbidden', monitor_id: 1 });
    }
    expect(c.messages.filter((m) => m.type === 'ack' || m.type === 'codec' || (m.type === 'status' && m.request_id !== 'known'))).toEqual([]);
    expect(c.binary).toHaveLength(0);
  } finally {
    redis.resume();
  }
});
