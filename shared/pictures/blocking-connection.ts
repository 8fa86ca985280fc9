/**
 * A connection BullMQ may block on (QueueEvents, Worker): BullMQ refuses one
 * whose commands give up after retries, so it gets maxRetriesPerRequest null
 * whatever options the caller's connection was made with.
 */
import { Cluster } from 'ioredis';
import type { RedisClient } from '../redis.js';

export function blockingConnection(redis: RedisClient, name: string): RedisClient {
  if (redis instanceof Cluster) {
    return redis.duplicate(undefined, { redisOptions: { ...redis.options.redisOptions, maxRetriesPerRequest: null, connectionName: name } });
  }
  return redis.duplicate({ maxRetriesPerRequest: null, connectionName: name });
}
