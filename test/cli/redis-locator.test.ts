import { describe, expect, it } from 'vitest';
import { locateRedis, pingRedis, spawnRedis, RedisNotFoundError } from '../../shared/redis-locator.js';

describe('finding Redis for the demo', () => {
  it('uses a configured URL as given', async () => {
    const r = await locateRedis('redis://example.invalid:6380');
    expect(r).toMatchObject({ url: 'redis://example.invalid:6380', how: 'configured' });
  });

  it('starts a private redis-server on a free port and stops it again', async () => {
    const r = await spawnRedis();
    const port = Number(new URL(r.url).port);
    expect(await pingRedis('127.0.0.1', port)).toBe(true);
    await r.stop();
    expect(await pingRedis('127.0.0.1', port)).toBe(false);
  });

  it('says how to get Redis when there is no binary', async () => {
    await expect(spawnRedis('/nonexistent/redis-server')).rejects.toThrow(RedisNotFoundError);
    await expect(spawnRedis('/nonexistent/redis-server')).rejects.toThrow(/apt-get install redis-server/);
  });
});
