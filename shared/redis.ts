/**
 * Redis connections. `redis://host:port/db` gives a single server;
 * `redis-cluster://host:port,host:port` gives an ioredis Cluster.
 *
 * Every connection reconnects by itself, quickly (a restarted Redis is read
 * again within a second), and says so once: one JSON log line when it is
 * lost, one when it is back, and a gauge and counter per role.
 */
import type { EventEmitter } from 'node:events';
import { Redis, Cluster } from 'ioredis';
import { logger } from './log.js';
import { redisMetrics } from './metrics.js';

export type RedisClient = Redis | Cluster;
/** What a connection is for, as the metrics label it. */
export type RedisRole = 'main' | 'reader';

const log = logger('redis');

/** Capped exponential backoff with jitter: 50 ms, 100 ms, … never more than about 0.5 s. */
export function reconnectDelay(times: number): number {
  return Math.min(500, 25 * 2 ** Math.min(times, 5)) + Math.floor(Math.random() * 50);
}

export function createRedis(url: string, name = 'zmcast', role: RedisRole = 'main'): RedisClient {
  if (url.startsWith('redis-cluster://')) {
    const nodes = url.slice('redis-cluster://'.length).split(',').map((hp) => {
      const [host, port] = hp.split(':');
      return { host, port: Number(port || 6379) };
    });
    return watchConnection(new Cluster(nodes, {
      redisOptions: { connectionName: name },
      scaleReads: 'master',
      clusterRetryStrategy: reconnectDelay,
    }), role);
  }
  return watchConnection(new Redis(url, { connectionName: name, maxRetriesPerRequest: null, enableReadyCheck: true, retryStrategy: reconnectDelay }), role);
}

/** A second connection of the same kind, for blocking reads. */
export function duplicate(client: RedisClient, name: string): RedisClient {
  return watchConnection(client instanceof Cluster ? client.duplicate() : client.duplicate({ connectionName: name }), 'reader');
}

export function isCluster(client: RedisClient): client is Cluster {
  return client instanceof Cluster;
}

/** The database the client uses (always 0 on a Cluster). */
export function databaseOf(client: RedisClient): number {
  return client instanceof Cluster ? 0 : client.options.db ?? 0;
}

/** True while the connection can take commands. */
export function isReady(client: RedisClient): boolean {
  return client.status === 'ready';
}

/**
 * Scripts need Redis 7.0 (script flags such as allow-oom, XTRIM MINID):
 * refuse to start against an older server with a message that says so.
 */
export async function checkRedisVersion(client: RedisClient): Promise<void> {
  const nodes = client instanceof Cluster ? client.nodes('master') : [client];
  for (const node of nodes) {
    const info = await node.info('server');
    const version = /redis_version:(\d+)\.(\d+)/.exec(info);
    if (version && Number(version[1]) < 7) {
      throw new RedisVersionError(`Redis ${version[1]}.${version[2]} is too old: zmcast needs Redis 7.0 or newer (script flags, XTRIM MINID)`);
    }
  }
}

export class RedisVersionError extends Error {
  readonly code = 'redis_version';
}

/** Logs and counts a connection's losses and recoveries from its 'error', 'reconnecting' and 'ready' events. */
export function watchConnection<T extends EventEmitter>(client: T, role: RedisRole): T {
  const m = redisMetrics();
  let lostAt: number | null = null;
  let everReady = false;
  client.on('error', (err: Error) => {
    if (lostAt !== null) return; // said once per outage
    lostAt = Date.now();
    m.connected.set({ role }, 0);
    log.warn('redis connection lost; reconnecting', { role, error: err.message });
  });
  // 'reconnecting', not 'close': a connection we end ourselves is not lost.
  client.on('reconnecting', () => {
    if (lostAt === null && everReady) {
      lostAt = Date.now();
      m.connected.set({ role }, 0);
      log.warn('redis connection lost; reconnecting', { role });
    }
  });
  client.on('ready', () => {
    m.connected.set({ role }, 1);
    if (lostAt !== null && everReady) {
      m.reconnects.inc({ role });
      log.info('redis connection restored', { role, down_ms: Date.now() - lostAt });
    }
    everReady = true;
    lostAt = null;
  });
  return client;
}
