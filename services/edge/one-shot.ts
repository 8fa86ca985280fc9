/**
 * The latest keyframe of a monitor, for one-shot `stream` requests and codec
 * checks: from the local channel's GOP when this edge is already following
 * the monitor, else straight from Redis.
 */
import { monitorKeys } from '../../shared/redis-keys.js';
import { configFromJson, type CodecConfigJson } from '../../shared/codec.js';
import { CachedPacket } from './cached-packet.js';
import type { Hub } from './hub.js';
import type { StreamEntry } from './stream-reader.js';
import { answered } from './monitor-directory.js';

export async function latestKeyframe(hub: Hub, monitorId: number): Promise<CachedPacket | null> {
  const local = hub.videoChannel(monitorId)?.latestKeyframe();
  if (local) return local;
  const keys = monitorKeys(monitorId);
  // Bounded: while Redis does not answer there is no keyframe to give.
  const meta = await answered(hub.redis.hmget(keys.meta, 'config', 'kf'));
  const [configJson, kf] = meta ?? [null, null];
  if (!kf) return null;
  const entries = (await answered(hub.redis.xrangeBuffer(keys.video, kf, kf) as Promise<StreamEntry[]>)) ?? [];
  const entry = entries[0];
  if (!entry || entry[1][0]?.toString() !== 'p') return null;
  const config = configJson ? configFromJson(JSON.parse(configJson) as CodecConfigJson) : null;
  return new CachedPacket(kf, entry[1][1], config);
}
