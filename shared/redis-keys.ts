/**
 * Every Redis key zmcast uses is made here. All keys of one monitor share the
 * hash tag `{m:ID}` so Redis Cluster keeps them in one slot and the publish
 * script may touch them together.
 */
export interface MonitorKeys {
  /** Stream of video packets (field `p`) and codec configs (field `c`); one per quality. */
  video: string;
  /** List of the stream ids of retained keyframes, oldest first; one per quality. */
  keyframes: string;
  /** Hash: current codec config (`config`), latest keyframe id (`kf`), history epoch; one per quality. */
  meta: string;
  /** Stream of monitor events (field `e`, JSON); one per monitor, whatever the quality. */
  events: string;
  /** String: JSON status record, refreshed with a TTL by capture; one per quality. */
  status: string;
  /** String with a TTL: the fencing token of the one capture allowed to write. */
  lease: string;
  /** Counter behind the fencing tokens; only grows. */
  fence: string;
}

export const PREFIX = 'zmcast';

/**
 * The streams of one monitor: `main` (the camera's Path) and, when it has
 * one, `sub` (its second, smaller stream: ZoneMinder's SecondPath).
 */
export type Quality = 'main' | 'sub';
export const QUALITIES: readonly Quality[] = ['main', 'sub'];

/** Set of known monitor ids, maintained by capture (and by the ZoneMinder sync). */
export const MONITORS_KEY = `${PREFIX}:monitors`;

/** Hash monitor id → display name. */
export const MONITOR_NAMES_KEY = `${PREFIX}:monitor-names`;

/**
 * Set of the ids of monitors configured with a sub-stream, maintained by
 * capture (re-asserted with the registry): edges serve `sub` to those, even
 * before the sub-stream's first connection, and fall back to main for others.
 */
export const SUB_STREAMS_KEY = `${PREFIX}:sub-streams`;

/** Sorted set of live capture processes (score: when their heartbeat expires, ms). */
export const CAPTURE_NODES_KEY = `${PREFIX}:capture-nodes`;

export function monitorTag(monitorId: number): string {
  return `{m:${monitorId}}`;
}

/**
 * A quality's own keys (video, keyframes, meta, status) beside the monitor's
 * shared ones (events, lease, fence): both qualities are written under one
 * lease, and the sub-stream's keys keep the monitor's hash tag.
 */
export function monitorKeys(monitorId: number, quality: Quality = 'main'): MonitorKeys {
  if (!Number.isInteger(monitorId) || monitorId < 0) throw new RangeError(`bad monitor id: ${monitorId}`);
  const base = `${PREFIX}:${monitorTag(monitorId)}`;
  const own = quality === 'main' ? base : `${base}:sub`;
  return {
    video: `${own}:video`,
    keyframes: `${own}:kf`,
    meta: `${own}:meta`,
    events: `${base}:events`,
    status: `${own}:status`,
    lease: `${base}:lease`,
    fence: `${base}:fence`,
  };
}

/**
 * The shard channel a video stream's entries are pushed on as they are added
 * (publish-4.lua), for edges following it live. Channels are not per
 * database, so the database is part of the name: two installs on one Redis
 * never hear each other. The stream key's hash tag keeps it in its slot.
 */
export function pushChannel(streamKey: string, db: number): string {
  return `${streamKey}:push:${db}`;
}

/** Keys of one picture variant of a monitor (a spec, and for derived streams its rate), in the monitor's slot. */
export interface PictureKeys {
  /** String with a short TTL: the newest picture of this variant (encodePicture bytes). */
  latest: string;
  /** String with a TTL: the id of the job making this variant now; requests join it. */
  pending: string;
  /** Capped stream of pictures (field `p`), appended by the one producer of a derived stream. */
  stream: string;
  /** String with a TTL: set by every want() of a derived stream; the producer stops once it is gone. */
  want: string;
}

export function pictureKeys(monitorId: number, variant: string): PictureKeys {
  if (!Number.isInteger(monitorId) || monitorId < 0) throw new RangeError(`bad monitor id: ${monitorId}`);
  if (!/^[a-z0-9.-]+$/i.test(variant)) throw new RangeError(`bad picture variant: ${variant}`);
  const base = `${PREFIX}:${monitorTag(monitorId)}:pic:${variant}`;
  return { latest: `${base}:latest`, pending: `${base}:pending`, stream: `${base}:stream`, want: `${base}:want` };
}

/** BullMQ's key prefix: one hash tag, so each queue's keys share a Cluster slot. */
export const QUEUE_PREFIX = `{${PREFIX}}`;

/** Sorted set of live picture workers (score: when their heartbeat expires, ms). */
export const WORKER_NODES_KEY = `${PREFIX}:worker-nodes`;
