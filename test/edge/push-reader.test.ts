/**
 * The edge's push reader against a real Redis and capture's real publish
 * script: what it hands on must be exactly what the stream holds, in order,
 * once each, however the subscription starts or is cut (a killed connection,
 * or Redis cutting a subscriber whose pub/sub output buffer overflowed).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { PushReader, decodePushedEntry } from '../../services/edge/push-reader.js';
import type { StreamEntry } from '../../services/edge/stream-reader.js';
import { monitorKeys } from '../../shared/redis-keys.js';
import { spawnRedis, type LocatedRedis } from '../../shared/redis-locator.js';
import { PacketSource } from '../helpers/edge.js';
import { freshRedisUrl } from '../helpers/redis.js';
import { metricValue } from '../helpers/metrics.js';
import { sleep, until } from '../helpers/wait.js';

let redis: Redis;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  redis = new Redis(await freshRedisUrl());
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

afterAll(async () => {
  await redis.quit();
});

/** A reader following monitor `id`'s video from `fromId`, recording every entry it hands on. */
function follow(on: Redis, id: number, fromId = '0-0') {
  const reader = new PushReader(on, `zmcast-test-push-${id}`);
  const got: StreamEntry[] = [];
  const resumed: string[] = [];
  reader.add(monitorKeys(id).video, fromId, {
    onEntries: (entries) => got.push(...entries),
    resume: async (lastId) => {
      resumed.push(lastId);
      return lastId;
    },
  });
  cleanups.push(() => reader.stop());
  return { reader, got, resumed };
}

function source(on: Redis, id: number, size = 20_000) {
  const s = new PacketSource(on, id, { gop: 25, size });
  cleanups.push(() => s.stop());
  return s;
}

/** Waits until `got` holds as many entries as the stream, then checks they are the stream's, in order, once each. */
async function expectWholeStream(on: Redis, id: number, got: StreamEntry[], fromId = '0-0'): Promise<void> {
  const stream = (await on.xrangeBuffer(monitorKeys(id).video, `(${fromId}`, '+')) as StreamEntry[];
  await until(() => got.length >= stream.length || undefined, 10_000, `${stream.length} entries (have ${got.length})`);
  expect(got.map((e) => e[0].toString())).toEqual(stream.map((e) => e[0].toString()));
  for (let i = 0; i < stream.length; i++) {
    expect(got[i][1].map((f) => f.toString('hex'))).toEqual(stream[i][1].map((f) => f.toString('hex')));
  }
}

async function clientIdNamed(on: Redis, name: string): Promise<number> {
  const list = (await on.client('LIST')) as string;
  const line = list.split('\n').find((l) => l.includes(`name=${name} `));
  return line ? Number(/id=(\d+)/.exec(line)![1]) : 0;
}

describe('push reader', () => {
  it('hands on each entry capture adds (codec config and packets), exactly as the stream holds it', async () => {
    const { reader, got } = follow(redis, 1);
    await until(() => reader.healthy && reader.size === 1, 3000, 'subscribed');
    const s = source(redis, 1);
    await s.register();
    await s.publish(60);
    await expectWholeStream(redis, 1, got);
    expect(got[0][1][0].toString()).toBe('c');
    expect(got.filter((e) => e[1][0].toString() === 'p')).toHaveLength(60);
  });

  it('starts after the id it is given, reading what came before the subscribe from the stream, with no repeats', async () => {
    const s = source(redis, 2);
    await s.register();
    await s.publish(30);
    const tenth = ((await redis.xrangeBuffer(monitorKeys(2).video, '-', '+', 'COUNT', 10)) as StreamEntry[])[9][0].toString();
    s.start(200);
    const { got } = follow(redis, 2, tenth);
    await sleep(500);
    await s.stop();
    await expectWholeStream(redis, 2, got, tenth);
  });

  it('comes back by itself when its connection is killed: resumes each stream, reads what it missed, counts the loss', async () => {
    const s = source(redis, 3);
    await s.register();
    const { reader, got, resumed } = follow(redis, 3);
    await until(() => reader.healthy, 3000, 'subscribed');
    const losses = await metricValue('zmcast_edge_reader_reconnects_total');
    s.start(200);
    await until(() => got.length > 20 || undefined, 5000, 'pushed entries');
    const killed = await clientIdNamed(redis, 'zmcast-test-push-3');
    const killedAt = Date.now();
    expect(await redis.client('KILL', 'ID', killed)).toBe(1);
    await until(() => resumed.length === 1 || undefined, 5000, 'the stream resumed');
    const resumedMs = Date.now() - killedAt;
    await sleep(300);
    await s.stop();
    await expectWholeStream(redis, 3, got);
    expect(await metricValue('zmcast_edge_reader_reconnects_total')).toBe(losses + 1);
    await until(() => reader.healthy, 3000, 'healthy again');
    console.log(`drill push-kill: resubscribed and reading on ${resumedMs} ms after the kill; ${got.length} entries, none lost or repeated`);
  });

  it('reads entries that reach the stream without being pushed (an older capture), says so, and counts them', async () => {
    const s = source(redis, 6, 2000);
    await s.register();
    const { got } = follow(redis, 6);
    const unpushed = await metricValue('zmcast_edge_unpushed_entries_total');
    s.start(50);
    await sleep(1000);
    await s.stop();
    // Quiet for longer than two checks: what was pushed is not read again.
    await sleep(5000);
    expect(await metricValue('zmcast_edge_unpushed_entries_total')).toBe(unpushed);
    const before = got.length;
    for (let i = 0; i < 3; i++) await redis.xadd(monitorKeys(6).video, '*', 'p', `not pushed ${i}`);
    await until(() => got.length === before + 3 || undefined, 8000, 'the unpushed entries');
    await expectWholeStream(redis, 6, got);
    expect(await metricValue('zmcast_edge_unpushed_entries_total')).toBe(unpushed + 3);
  });

  it('says it is unhealthy while an ACL refuses its subscription, and follows the stream once it is allowed', async () => {
    const user = 'zmcast-push-no-channels';
    await redis.acl('SETUSER', user, 'reset', 'on', '>s3cret', '~*', '+@all', 'resetchannels');
    cleanups.push(async () => void (await redis.acl('DELUSER', user)));
    const limited = new Redis(urlOf(redis).replace('redis://', `redis://${user}:s3cret@`));
    cleanups.push(() => limited.disconnect());
    const { reader, got } = follow(limited, 7);
    await until(() => !reader.healthy || undefined, 3000, 'unhealthy while refused');
    await redis.acl('SETUSER', user, '&*');
    await until(() => reader.healthy, 6000, 'healthy once allowed');
    const s = source(redis, 7);
    await s.register();
    await s.publish(10);
    await expectWholeStream(redis, 7, got);
  });

  it('says it is unhealthy while Redis does not answer, and healthy once it does', async () => {
    const own = await spawnRedis();
    const on = new Redis(own.url);
    cleanups.push(() => stopRedis(own, on));
    const { reader } = follow(on, 4);
    await until(() => reader.healthy, 3000, 'subscribed');
    await on.call('CLIENT', 'PAUSE', 4000, 'ALL');
    await until(() => !reader.healthy || undefined, 4000, 'unhealthy while paused');
    await until(() => reader.healthy, 6000, 'healthy after the pause');
  });

  it('loses nothing when Redis cuts it for an overfull pub/sub output buffer: every cut is read back from the stream', async () => {
    // Its own Redis: the limit applies to every subscriber of the server.
    const own = await spawnRedis();
    const on = new Redis(own.url);
    cleanups.push(() => stopRedis(own, on));
    const s = source(on, 5);
    await s.register();
    const { reader, got, resumed } = follow(on, 5);
    await until(() => reader.healthy, 3000, 'subscribed');
    // Any 20 KB entry overflows a 1 KB limit: each push cuts the connection until the limit is lifted.
    await on.config('SET', 'client-output-buffer-limit', 'pubsub 1kb 0 0');
    s.start(100);
    const limitedAt = Date.now();
    await until(() => resumed.length >= 3 || undefined, 10_000, 'three cuts');
    const threeCutsMs = Date.now() - limitedAt;
    await on.config('SET', 'client-output-buffer-limit', 'pubsub 32mb 8mb 60');
    const cuts = resumed.length;
    await sleep(500);
    await s.stop();
    await expectWholeStream(on, 5, got);
    expect(got.length).toBeGreaterThan(40);
    // With the limit lifted, pushes flow again without further cuts.
    expect(resumed.length).toBeLessThanOrEqual(cuts + 1);
    console.log(`drill push-overflow: 3 cuts in ${threeCutsMs} ms at 100 packets/s, ${got.length} entries, none lost or repeated`);
  });
});

describe('pushed entry format', () => {
  it('reads ids and fields, keeps the packet in place and refuses what is malformed', () => {
    const packet = Buffer.from('\x00\x01:9:binary\r\n');
    const message = Buffer.concat([Buffer.from(`3:1-2${1}:p${packet.length}:`), packet]);
    const [id, fields] = decodePushedEntry(message);
    expect(id.toString()).toBe('1-2');
    expect(fields.map((f) => f.toString())).toEqual(['p', packet.toString()]);
    expect(fields[1].buffer).toBe(message.buffer);
    expect(() => decodePushedEntry(Buffer.from('3:1-21:p9:short'))).toThrow();
    expect(() => decodePushedEntry(Buffer.from('x:1-2'))).toThrow();
    expect(() => decodePushedEntry(Buffer.from('3:1-21:p'))).toThrow();
  });
});

/** The URL (server and database) a client was made with. */
function urlOf(on: Redis): string {
  const o = on.options;
  return `redis://${o.host ?? '127.0.0.1'}:${o.port ?? 6379}/${o.db ?? 0}`;
}

async function stopRedis(own: LocatedRedis, on: Redis): Promise<void> {
  on.disconnect();
  await own.stop?.();
}
