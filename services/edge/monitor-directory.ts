/**
 * What the edge knows about monitors: whether one exists, its name and its
 * status. Answers are cached briefly and concurrent asks share one Redis
 * read, so status subscriptions cost Redis nothing per viewer.
 */
import { monitorKeys, MONITORS_KEY, MONITOR_NAMES_KEY } from '../../shared/redis-keys.js';
import type { RedisClient } from '../../shared/redis.js';
import type { StatusReply } from '../../shared/protocol.js';
import type { StatusRecord } from '../capture/publisher.js';

const EXISTS_TTL_MS = 5000;
const STATUS_TTL_MS = 100;

interface Cached<T> {
  at: number;
  value: Promise<T>;
}

export class MonitorDirectory {
  private readonly known = new Map<number, Cached<boolean>>();
  private readonly statuses = new Map<number, Cached<StatusReply>>();

  constructor(private readonly redis: RedisClient) {}

  exists(monitorId: number): Promise<boolean> {
    return cached(this.known, monitorId, EXISTS_TTL_MS, async () =>
      (await this.redis.sismember(MONITORS_KEY, String(monitorId))) === 1);
  }

  status(monitorId: number): Promise<StatusReply> {
    return cached(this.statuses, monitorId, STATUS_TTL_MS, async () => {
      const [record, name] = await Promise.all([
        this.redis.get(monitorKeys(monitorId).status),
        this.redis.hget(MONITOR_NAMES_KEY, String(monitorId)),
      ]);
      return toStatusReply(monitorId, name ?? `Monitor ${monitorId}`, record ? (JSON.parse(record) as StatusRecord) : null);
    });
  }

  async list(): Promise<{ id: number; name: string }[]> {
    const [ids, names] = await Promise.all([this.redis.smembers(MONITORS_KEY), this.redis.hgetall(MONITOR_NAMES_KEY)]);
    return ids.map(Number).sort((a, b) => a - b).map((id) => ({ id, name: names[id] ?? `Monitor ${id}` }));
  }
}

function cached<T>(map: Map<number, Cached<T>>, key: number, ttl: number, load: () => Promise<T>): Promise<T> {
  const now = Date.now();
  const hit = map.get(key);
  if (hit && now - hit.at < ttl) return hit.value;
  const value = load();
  map.set(key, { at: now, value });
  value.catch(() => map.delete(key));
  if (map.size > 10_000) map.clear(); // unknown ids from hostile clients must not grow this forever
  return value;
}

/** ZoneMinder's status fields, filled from the capture status record; zmcast's own fields follow. */
export function toStatusReply(monitorId: number, name: string, r: StatusRecord | null): StatusReply {
  const now = Date.now();
  const connected = r?.state === 'connected';
  return {
    type: 'status',
    monitor_id: monitorId,
    monitor_name: name,
    connected,
    shm_valid: connected,
    state_id: connected ? 0 : -1,
    state: connected ? 'IDLE' : 'Unknown',
    capture_fps: r?.fps ?? 0,
    analysis_fps: 0,
    capture_bandwidth: Math.round(((r?.kbps ?? 0) * 1000) / 8),
    image_count: r?.packets ?? 0,
    analysing: false,
    capturing: connected,
    recording: false,
    signal: connected,
    last_frame_score: 0,
    last_event_id: 0,
    heartbeat_time: r ? Math.floor(r.updated / 1000) : 0,
    startup_time: r ? Math.floor(r.startup_time / 1000) : 0,
    online: r !== null,
    capture_state: r?.state ?? 'offline',
    last_packet_age_ms: r?.last_packet_time ? now - r.last_packet_time : null,
    capture_node: r?.capture_node ?? null,
    generation: r?.generation ?? 0,
  };
}
