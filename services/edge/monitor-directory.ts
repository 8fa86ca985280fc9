/**
 * What the edge knows about monitors: whether one exists, its name and its
 * status. Answers are cached briefly and concurrent asks share one Redis
 * read, so status subscriptions cost Redis nothing per viewer.
 *
 * Every answer comes within ANSWER_WITHIN_MS: when Redis is slow or away the
 * edge answers from what it knew last, marked stale, instead of hanging.
 * "Unknown" is never cached for long, so a Redis that restarted empty (and
 * is refilled by capture within a second) does not turn into unknown monitors.
 */
import { monitorKeys, MONITORS_KEY, MONITOR_NAMES_KEY } from '../../shared/redis-keys.js';
import type { RedisClient } from '../../shared/redis.js';
import { ErrorCode, ProtocolError, type StatusReply, type SubStreamStatus } from '../../shared/protocol.js';
import type { StatusRecord } from '../../shared/status-record.js';
import { within } from '../../shared/within.js';
import { logger } from '../../shared/log.js';
import { ReplyError } from 'ioredis';

const EXISTS_TTL_MS = 5000;
const MISSING_TTL_MS = 500;
const STATUS_TTL_MS = 100;
export const ANSWER_WITHIN_MS = 1000;
/** At most one log line per this period for Redis refusing a read: a broken key must not flood the log. */
const REFUSAL_LOG_EVERY_MS = 10_000;
const log = logger('directory');
let lastRefusalLog = 0;
/** Unknown ids from hostile clients must not grow the caches forever. */
const MAX_CACHED = 10_000;

interface Cached<T> {
  at: number;
  ttl: number;
  value: Promise<T>;
}

export interface MonitorListing {
  monitors: { id: number; name: string }[];
  /** Redis did not answer in time: this is the last list the edge read. */
  stale: boolean;
}

export class MonitorDirectory {
  private readonly known = new Map<number, Cached<boolean>>();
  private readonly statuses = new Map<number, Cached<StatusReply>>();
  private readonly lastStatus = new Map<number, StatusReply>();
  private readonly lastExists = new Map<number, boolean>();
  private lastList: MonitorListing['monitors'] | null = null;
  /** One registry read at a time, however many ask: requests during a Redis stall must not pile up commands. */
  private listing: Promise<[string[], Record<string, string>]> | null = null;

  constructor(private readonly redis: RedisClient) {}

  /** Rejects with `unavailable` only when Redis is away and the edge never knew the monitor. */
  exists(monitorId: number): Promise<boolean> {
    return cached(this.known, monitorId, async () => {
      const read = Promise.all([
        this.redis.sismember(MONITORS_KEY, String(monitorId)),
        this.redis.exists(monitorKeys(monitorId).meta),
      ]).then(([member, meta]) => member === 1 || meta === 1);
      const fresh = await answered(read);
      if (fresh === undefined) {
        const last = this.lastExists.get(monitorId);
        if (last === undefined) throw new ProtocolError(ErrorCode.Unavailable, 'Redis is not answering; try again shortly', undefined, monitorId);
        return last;
      }
      remember(this.lastExists, monitorId, fresh);
      return fresh;
    }, (found) => (found ? EXISTS_TTL_MS : MISSING_TTL_MS));
  }

  status(monitorId: number): Promise<StatusReply> {
    return cached(this.statuses, monitorId, async () => {
      const read = Promise.all([
        this.redis.mget(monitorKeys(monitorId).status, monitorKeys(monitorId, 'sub').status),
        this.redis.hget(MONITOR_NAMES_KEY, String(monitorId)),
      ]);
      const fresh = await answered(read);
      if (fresh === undefined) {
        const last = this.lastStatus.get(monitorId) ?? toStatusReply(monitorId, `Monitor ${monitorId}`, null);
        return { ...last, stale: true };
      }
      const [[record, subRecord], name] = fresh;
      const parse = (json: string | null) => (json ? (JSON.parse(json) as StatusRecord) : null);
      const reply = toStatusReply(monitorId, name ?? `Monitor ${monitorId}`, parse(record), Date.now(), parse(subRecord));
      remember(this.lastStatus, monitorId, reply);
      return reply;
    }, () => STATUS_TTL_MS);
  }

  async list(): Promise<MonitorListing> {
    this.listing ??= Promise.all([this.redis.smembers(MONITORS_KEY), this.redis.hgetall(MONITOR_NAMES_KEY)])
      .finally(() => (this.listing = null));
    const fresh = await answered(this.listing);
    if (fresh === undefined) return { monitors: this.lastList ?? [], stale: true };
    const [ids, names] = fresh;
    this.lastList = ids.map(Number).sort((a, b) => a - b).map((id) => ({ id, name: names[id] ?? `Monitor ${id}` }));
    return { monitors: this.lastList, stale: false };
  }
}

/** The value, or undefined when Redis did not answer (error or ANSWER_WITHIN_MS). */
export function answered<T>(read: Promise<T>): Promise<T | undefined> {
  return within(read.catch(logRefusal), ANSWER_WITHIN_MS);
}

/**
 * Connection trouble is logged by the connection and shows as stale answers;
 * an error Redis itself replied (a key of the wrong type, a script missing)
 * would show only as stale answers too, so it is logged here.
 */
function logRefusal(err: unknown): never {
  const now = Date.now();
  if (err instanceof ReplyError && now - lastRefusalLog >= REFUSAL_LOG_EVERY_MS) {
    lastRefusalLog = now;
    log.warn('redis refused a read; answering from what the edge knew', { error: (err as Error).message });
  }
  throw err;
}

function cached<T>(map: Map<number, Cached<T>>, key: number, load: () => Promise<T>, ttlOf: (value: T) => number): Promise<T> {
  const now = Date.now();
  const hit = map.get(key);
  if (hit && now - hit.at < hit.ttl) return hit.value;
  const value = load();
  const entry: Cached<T> = { at: now, ttl: ANSWER_WITHIN_MS, value };
  value.then((v) => (entry.ttl = ttlOf(v)), () => map.get(key) === entry && map.delete(key));
  if (map.size > MAX_CACHED) map.clear();
  map.set(key, entry);
  return value;
}

function remember<T>(map: Map<number, T>, key: number, value: T): void {
  if (map.size > MAX_CACHED) map.clear();
  map.set(key, value);
}

/** ZoneMinder's status fields, filled from the capture status record; zmcast's own fields follow. */
export function toStatusReply(monitorId: number, name: string, r: StatusRecord | null, now = Date.now(), sub: StatusRecord | null = null): StatusReply {
  const silent = isSilent(r, now);
  const connected = r?.state === 'connected' && !silent;
  return {
    type: 'status',
    monitor_id: monitorId,
    monitor_name: name,
    connected,
    shm_valid: connected,
    state_id: connected ? 0 : -1,
    state: connected ? 'IDLE' : 'Unknown',
    capture_fps: connected ? r.fps : 0,
    analysis_fps: 0,
    capture_bandwidth: connected ? Math.round((r.kbps * 1000) / 8) : 0,
    image_count: r?.packets ?? 0,
    analysing: false,
    capturing: connected,
    recording: false,
    signal: connected,
    last_frame_score: 0,
    last_event_id: 0,
    heartbeat_time: r ? Math.floor(r.updated / 1000) : 0,
    startup_time: r ? Math.floor(r.startup_time / 1000) : 0,
    online: r !== null && !silent,
    capture_state: silent ? 'unresponsive' : r?.state ?? 'offline',
    last_packet_age_ms: r?.last_packet_time ? now - r.last_packet_time : null,
    capture_node: r?.capture_node ?? null,
    generation: r?.generation ?? 0,
    publishing: r && !silent ? r.publishing ?? 'ok' : null,
    stale: false,
    width: r?.width ?? 0,
    height: r?.height ?? 0,
    sub: sub ? toSubStatus(sub, now) : null,
  };
}

/** A record capture stopped refreshing (killed, paused, cut off) says nothing true about now. */
function isSilent(r: StatusRecord | null, now: number): boolean {
  return r !== null && now - r.updated > 2 * (r.interval_ms ?? 1000) + 500;
}

function toSubStatus(r: StatusRecord, now: number): SubStreamStatus {
  const silent = isSilent(r, now);
  const connected = r.state === 'connected' && !silent;
  return {
    online: !silent,
    connected,
    capture_state: silent ? 'unresponsive' : r.state,
    capture_fps: connected ? r.fps : 0,
    capture_bandwidth: connected ? Math.round((r.kbps * 1000) / 8) : 0,
    width: r.width ?? 0,
    height: r.height ?? 0,
    generation: r.generation,
    publishing: silent ? null : r.publishing ?? 'ok',
    last_packet_age_ms: r.last_packet_time ? now - r.last_packet_time : null,
  };
}
