/**
 * Finds the Redis the integration tests use: TEST_REDIS_URL/REDIS_URL first
 * (global-setup.ts sets it to a private redis-server for the run), then a
 * local server on 6379, then a private redis-server binary, then a
 * testcontainers container where a Docker engine exists. When none works the
 * suite fails loudly: it never skips.
 */
import { Redis } from 'ioredis';
import { locateRedis, pingRedis, spawnRedis, type LocatedRedis } from '../../shared/redis-locator.js';

let located: Promise<LocatedRedis> | undefined;

async function find(): Promise<LocatedRedis> {
  const fromEnv = process.env.TEST_REDIS_URL ?? process.env.REDIS_URL ?? '';
  if (fromEnv) return locateRedis(fromEnv);
  if (await pingRedis('127.0.0.1', 6379)) return locateRedis('');
  try {
    return await spawnRedis();
  } catch (spawnErr) {
    try {
      const { GenericContainer } = await import('testcontainers');
      const c = await new GenericContainer('redis:7-alpine').withExposedPorts(6379).start();
      return { url: `redis://${c.getHost()}:${c.getMappedPort(6379)}`, how: 'spawned', stop: async () => { await c.stop(); } };
    } catch (containerErr) {
      throw new Error(
        `Integration tests need Redis and none was found. Tried TEST_REDIS_URL/REDIS_URL, 127.0.0.1:6379, ` +
          `redis-server (${(spawnErr as Error).message}) and testcontainers (${(containerErr as Error).message}).`,
      );
    }
  }
}

/** The base URL of the test Redis (shared by all tests in a worker). */
export function testRedisUrl(): Promise<string> {
  located ??= find();
  return located.then((r) => r.url);
}

/**
 * A Redis URL on a database of its own (1..15, handed out in turn by a
 * counter in database 0), flushed first, so consecutive test files never see
 * each other's keys, nor anything a previous file left running.
 */
export async function freshRedisUrl(): Promise<string> {
  const base = (await testRedisUrl()).replace(/\/\d+$/, '');
  const admin = new Redis(base);
  const n = await admin.incr('zmcast-test:databases-handed-out');
  admin.disconnect();
  const url = `${base}/${1 + (n % 15)}`;
  const r = new Redis(url);
  await r.flushdb();
  r.disconnect();
  return url;
}
