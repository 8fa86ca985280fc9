import { afterEach, describe, expect, it, vi } from 'vitest';
import { Redis } from 'ioredis';
import { MonitorDirectory } from '../../services/edge/monitor-directory.js';
import { MONITORS_KEY, MONITOR_NAMES_KEY } from '../../shared/redis-keys.js';
import { freshRedisUrl } from '../helpers/redis.js';

describe('monitor directory', () => {
  let redis: Redis | undefined;
  afterEach(() => {
    vi.restoreAllMocks();
    redis?.disconnect();
  });

  it('logs a read that Redis refuses (a key of the wrong type) instead of only answering stale', async () => {
    redis = new Redis(await freshRedisUrl());
    await redis.sadd(MONITORS_KEY, '1');
    await redis.hset(MONITOR_NAMES_KEY, '1', 'Front door');
    const directory = new MonitorDirectory(redis);
    expect(await directory.list()).toEqual({ monitors: [{ id: 1, name: 'Front door' }], stale: false });

    // Something else overwrote the names hash with a string: every HGETALL now fails with WRONGTYPE.
    await redis.set(MONITOR_NAMES_KEY, 'not a hash');
    const lines: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    expect(await directory.list()).toEqual({ monitors: [{ id: 1, name: 'Front door' }], stale: true });
    const logged = lines.map((l) => JSON.parse(l) as { level: string; msg: string; error: string });
    expect(logged).toContainEqual(expect.objectContaining({ level: 'warn', msg: expect.stringContaining('redis refused a read'), error: expect.stringContaining('WRONGTYPE') }));
  });
});
