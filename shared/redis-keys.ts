/**
 * Every Redis key zmcast uses is made here. All keys of one monitor share the
 * hash tag `{m:ID}` so Redis Cluster keeps them in one slot and the publish
 * script may touch them together.
 */
export interface MonitorKeys {
  /** Stream of video packets (field `p`) and codec configs (field `c`). */
  video: string;
  /** List of the stream ids of retained keyframes, oldest first. */
  keyframes: string;
  /** Hash: current codec config (`config`), latest keyframe id (`kf`). */
  meta: string;
  /** Stream of monitor events (field `e`, JSON). */
  events: string;
  /** String: JSON status record, refreshed with a TTL by capture. */
  status: string;
  /** String with a TTL: the fencing token of the one capture allowed to write. */
  lease: string;
  /** Counter behind the fencing tokens; only grows. */
  fence: string;
}

export const PREFIX = 'zmcast';

/** Set of known monitor ids, maintained by capture (and by the ZoneMinder sync). */
export const MONITORS_KEY = `${PREFIX}:monitors`;

/** Hash monitor id → display name. */
export const MONITOR_NAMES_KEY = `${PREFIX}:monitor-names`;

/** Sorted set of live capture processes (score: when their heartbeat expires, ms). */
export const CAPTURE_NODES_KEY = `${PREFIX}:capture-nodes`;

export function monitorTag(monitorId: number): string {
  return `{m:${monitorId}}`;
}

export function monitorKeys(monitorId: number): MonitorKeys {
  if (!Number.isInteger(monitorId) || monitorId < 0) throw new RangeError(`bad monitor id: ${monitorId}`);
  const base = `${PREFIX}:${monitorTag(monitorId)}`;
  return {
    video: `${base}:video`,
    keyframes: `${base}:kf`,
    meta: `${base}:meta`,
    events: `${base}:events`,
    status: `${base}:status`,
    lease: `${base}:lease`,
    fence: `${base}:fence`,
  };
}
