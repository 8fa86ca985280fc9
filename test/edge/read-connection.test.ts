/**
 * The edge's own connection for blocking stream reads, against a real Redis:
 * what it reads must be what ioredis reads, and it must come back by itself
 * when Redis drops it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { ReadConnection, openReadLink } from '../../services/edge/read-connection.js';
import { RespError } from '../../services/edge/resp.js';
import { freshRedisUrl } from '../helpers/redis.js';
import { until } from '../helpers/wait.js';

let url: string;
let redis: Redis;
const links: { disconnect(): void }[] = [];

function open(name: string, from: Redis = redis) {
  const link = openReadLink(from, name) as ReadConnection;
  links.push(link);
  return link;
}

beforeAll(async () => {
  url = await freshRedisUrl();
  redis = new Redis(url);
});

afterAll(async () => {
  for (const l of links) l.disconnect();
  await redis.quit();
});

describe('read connection', () => {
  it('reads binary stream entries exactly as ioredis does, from the database in the URL', async () => {
    const payload = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 13) & 0xff));
    await redis.xadd('rc:a', '1-1', 'p', payload);
    await redis.xadd('rc:a', '1-2', 'c', '{"x":1}', 'e', 'E1');
    await redis.xadd('rc:b', '5-0', 'p', Buffer.from('\r\n\r\n'));
    const link = open('zmcast-test-reader');
    const mine = await link.xread(10, 100, ['rc:a', 'rc:b'], ['0-0', '0-0']);
    const theirs = await redis.xreadBuffer('COUNT', 10, 'STREAMS', 'rc:a', 'rc:b', '0-0', '0-0');
    expect(mine).toEqual(theirs);
    expect((mine![0][1][0][1][1]).equals(payload)).toBe(true);
    const clients = await redis.client('LIST');
    expect(clients).toMatch(/name=zmcast-test-reader .*db=\d+/);
  });

  it('answers null when the block time passes, and an UNBLOCK cuts a block short', async () => {
    const link = open('zmcast-test-unblock');
    expect(await link.xread(10, 50, ['rc:none'], ['$'])).toBeNull();
    const id = await link.clientId();
    const started = Date.now();
    const read = link.xread(10, 10_000, ['rc:none'], ['$']);
    await until(async () => (await redis.client('UNBLOCK', id)) === 1, 2000, 'the read to block');
    expect(await read).toBeNull();
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('fails an error reply as an error and stays usable', async () => {
    const link = open('zmcast-test-errors');
    await redis.set('rc:string', 'x');
    await expect(link.xread(1, 10, ['rc:string'], ['0-0'])).rejects.toBeInstanceOf(RespError);
    await redis.xadd('rc:c', '1-0', 'p', 'x');
    expect(await link.xread(1, 10, ['rc:c'], ['0-0'])).toHaveLength(1);
  });

  it('fails a read Redis cut off, says so, and reads again once reconnected by itself', async () => {
    const link = open('zmcast-test-killed');
    let closes = 0;
    link.on('close', () => closes++);
    // Caught from the start: the connection may close before Redis answers the KILL.
    const read = link.xread(10, 10_000, ['rc:kill'], ['$']).catch((err: Error) => err);
    const id = await until(() => blockedId(redis), 3000, 'the read to block');
    expect(await redis.client('KILL', 'ID', id)).toBe(1);
    expect(await read).toBeInstanceOf(Error);
    expect(((await read) as Error).message).toMatch(/closed/);
    expect(closes).toBe(1);
    // A read sent while it is down waits for the new connection.
    const next = link.xread(10, 5000, ['rc:kill'], ['0-0']);
    await redis.xadd('rc:kill', '9-0', 'p', 'after');
    const reply = await next;
    expect(reply![0][1][0][0].toString()).toBe('9-0');
  });

  it('authenticates as an ACL user', async () => {
    await redis.acl('SETUSER', 'zmcast-reader-test', 'on', '>s3cret', '~*', '+@all');
    try {
      const authed = new Redis(url.replace('redis://', 'redis://zmcast-reader-test:s3cret@'), { lazyConnect: true });
      const link = open('zmcast-test-acl', authed);
      await redis.xadd('rc:acl', '1-0', 'p', 'x');
      expect(await link.xread(1, 10, ['rc:acl'], ['0-0'])).toHaveLength(1);
      expect(await redis.client('LIST')).toMatch(/user=zmcast-reader-test/);
    } finally {
      await redis.acl('DELUSER', 'zmcast-reader-test');
    }
  });
});

/** The id of the client blocked in XREAD on rc:kill. */
async function blockedId(r: Redis): Promise<number> {
  const list = (await r.client('LIST')) as string;
  const line = list.split('\n').find((l) => l.includes('name=zmcast-test-killed') && l.includes('cmd=xread'));
  return line ? Number(/id=(\d+)/.exec(line)![1]) : 0;
}
