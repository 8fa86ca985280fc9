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

let dbCounter = 0;
/**
 * A Redis URL on a database of its own (1..15, by vitest worker and counter),
 * flushed first, so parallel test files never see each other's keys.
 */
export async function freshRedisUrl(): Promise<string> {
  const base = await testRedisUrl();
  const worker = Number(process.env.VITEST_POOL_ID ?? process.env.VITEST_WORKER_ID ?? 1);
  const db = 1 + ((worker * 3 + dbCounter++) % 15);
  const url = `${base.replace(/\/\d+$/, '')}/${db}`;
  const r = new Redis(url);
  await r.flushdb();
  r.disconnect();
  return url;
}
