/**
 * Redis connections. `redis://host:port/db` gives a single server;
 * `redis-cluster://host:port,host:port` gives an ioredis Cluster.
 */
import { Redis, Cluster } from 'ioredis';

export type RedisClient = Redis | Cluster;

export function createRedis(url: string, name = 'zmcast'): RedisClient {
  if (url.startsWith('redis-cluster://')) {
    const nodes = url.slice('redis-cluster://'.length).split(',').map((hp) => {
      const [host, port] = hp.split(':');
      return { host, port: Number(port || 6379) };
    });
    return new Cluster(nodes, { redisOptions: { connectionName: name }, scaleReads: 'master' });
  }
  return new Redis(url, { connectionName: name, maxRetriesPerRequest: null, enableReadyCheck: true });
}

/** A second connection of the same kind, for blocking reads. */
export function duplicate(client: RedisClient, name: string): RedisClient {
  return client instanceof Cluster ? client.duplicate() : client.duplicate({ connectionName: name });
}

export function isCluster(client: RedisClient): client is Cluster {
  return client instanceof Cluster;
}
