/**
 * The zmcast WebSocket protocol: commands, replies, error codes and close
 * codes. It is a superset of ZoneMinder's per-monitor WebSocket draft (PR
 * #4830); docs/protocol.md describes it for people. The edge and the
 * reference client both use this module.
 */
import type { CodecConfigJson, VideoCodec } from './codec.js';
import type { Quality } from './redis-keys.js';

export type { Quality };

export const PROTOCOL_VERSION = 1;

export type Topic = 'status' | 'events' | 'stream' | 'image';
/** `auto` (a zmcast addition) means whatever codec the camera sends. */
export type StreamCodec = VideoCodec | 'mjpeg' | 'auto';

export const STATUS_INTERVAL = { min: 100, max: 60_000, default: 1000 } as const;
/** Pictures of an `image` subscription or an MJPEG stream: the same bounds as status pushes. */
export const PICTURE_INTERVAL = STATUS_INTERVAL;

/**
 * What a client asked of a picture, as sent: checked by the edge with the
 * workers' parsePictureSpec (shared/pictures), whose errors name the bad field.
 */
export interface PictureRequest {
  format: string;
  width?: unknown;
  height?: unknown;
  quality?: unknown;
}

export type Command =
  | { command: 'status'; monitorId: number; requestId?: RequestId }
  | { command: 'image'; monitorId: number; format: string; picture: PictureRequest; requestId?: RequestId }
  | { command: 'stream'; monitorId: number; codec: StreamCodec; picture: PictureRequest; requestId?: RequestId }
  | { command: 'subscribe'; monitorId: number; topic: 'status'; intervalMs: number; requestId?: RequestId }
  | { command: 'subscribe'; monitorId: number; topic: 'events'; since?: string; epoch?: string; requestId?: RequestId }
  | {
    command: 'subscribe'; monitorId: number; topic: 'stream'; codec: StreamCodec;
    /** Passthrough codecs: which of the monitor's streams, and whether only keyframes. */
    quality: Quality; keyframesOnly: boolean;
    /** mjpeg: the pictures' rate and spec. */
    intervalMs: number; picture: PictureRequest; requestId?: RequestId;
  }
  | { command: 'subscribe'; monitorId: number; topic: 'image'; intervalMs: number; picture: PictureRequest; requestId?: RequestId }
  | { command: 'unsubscribe'; monitorId: number; topic: Topic; requestId?: RequestId }
  | { command: 'ping'; requestId?: RequestId };

export type RequestId = string | number;

/** Stable error codes; `message` texts for ZoneMinder's own errors are kept verbatim. */
export const ErrorCode = {
  BadJson: 'bad_json',
  BadRequest: 'bad_request',
  MissingCommand: 'missing_command',
  UnknownCommand: 'unknown_command',
  MissingTopic: 'missing_topic',
  UnknownTopic: 'unknown_topic',
  MissingMonitor: 'missing_monitor',
  UnknownMonitor: 'unknown_monitor',
  Forbidden: 'forbidden',
  /** A command before the in-band `auth` on a connection that has not authenticated. */
  Unauthenticated: 'unauthenticated',
  /** A later in-band `auth` (token refresh) was refused; the connection keeps its earlier credentials. */
  AuthFailed: 'auth_failed',
  UnsupportedCodec: 'unsupported_codec',
  ImageUnavailable: 'image_unavailable',
  /** A picture was asked of a monitor whose camera is not delivering video. */
  CameraDown: 'camera_down',
  /** The workers are too busy (or none runs) to make the picture; try again. */
  Overloaded: 'overloaded',
  /** No picture came within the edge's bound. */
  Timeout: 'timeout',
  RateLimited: 'rate_limited',
  TooManySubscriptions: 'too_many_subscriptions',
  EventsExpired: 'events_expired',
  /** `since` named an event of a history Redis lost (restart, failover without the data): what happened between is unknown. */
  HistoryLost: 'history_lost',
  /** Redis is not answering and the edge cannot answer from what it knows; try again. */
  Unavailable: 'unavailable',
  Internal: 'internal',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** ZoneMinder's draft error texts, used where the same condition arises. */
export const ZmMessage = {
  MissingCommand: 'Missing command',
  MissingTopic: 'Missing topic',
  UnsupportedCommand: 'Unsupported command',
  UnsupportedTopic: 'Unsupported topic',
  ImageUnavailable: 'Unable to fetch image payload',
  MjpegUnavailable: 'Unable to fetch mjpeg stream payload',
  StreamUnavailable: 'Unsupported stream codec or payload unavailable',
} as const;

/** Close codes beyond RFC 6455's own (1000 normal, 1001 going away, 1009 too big). */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  PolicyViolation: 1008,
  MessageTooBig: 1009,
  InternalError: 1011,
  ServiceRestart: 1012,
  TryAgainLater: 1013,
  SlowConsumer: 4008,
  RateLimited: 4029,
  AuthExpired: 4401,
  AuthRevoked: 4403,
} as const;

export class ProtocolError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly requestId?: RequestId,
    readonly monitorId?: number,
  ) {
    super(message);
  }
}

const TOPICS: readonly string[] = ['status', 'events', 'stream', 'image'];
const STREAM_CODECS: readonly string[] = ['h264', 'h265', 'av1', 'mjpeg', 'auto'];

/**
 * Parses one text frame. `monitorId` is the monitor of a per-monitor socket
 * (`/monitors/:id/ws`); on `/ws` every command must name `monitor_id`.
 */
export function parseCommand(text: string, monitorId?: number): Command {
  return toCommand(parseMessage(text), monitorId);
}

/** JSON.parse with the protocol's error. */
export function parseMessage(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ProtocolError(ErrorCode.BadJson, 'Malformed JSON');
  }
}

/** Checks a parsed message and turns it into a typed command. */
export function toCommand(msg: unknown, monitorId?: number): Command {
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
    throw new ProtocolError(ErrorCode.BadRequest, 'A command must be a JSON object');
  }
  const m = msg as Record<string, unknown>;
  const requestId = readRequestId(m.request_id);
  const fail = (code: ErrorCode, message: string): never => {
    throw new ProtocolError(code, message, requestId, typeof m.monitor_id === 'number' ? m.monitor_id : monitorId);
  };
  if (m.command === undefined || m.command === null || m.command === '') fail(ErrorCode.MissingCommand, ZmMessage.MissingCommand);
  if (typeof m.command !== 'string') fail(ErrorCode.BadRequest, 'command must be a string');
  if (m.command === 'ping') return { command: 'ping', requestId };
  if (!['status', 'image', 'stream', 'subscribe', 'unsubscribe'].includes(m.command as string)) {
    fail(ErrorCode.UnknownCommand, ZmMessage.UnsupportedCommand);
  }
  const target = readMonitorId(m.monitor_id, monitorId, fail);
  switch (m.command) {
    case 'status':
      return { command: 'status', monitorId: target, requestId };
    case 'image': {
      const picture = readPicture(m, readString(m.format, 'format', 'jpeg', fail));
      return { command: 'image', monitorId: target, format: picture.format, picture, requestId };
    }
    case 'stream':
      return { command: 'stream', monitorId: target, codec: readCodec(m.codec, fail), picture: readPicture(m, 'jpeg'), requestId };
  }
  if (m.topic === undefined || m.topic === null || m.topic === '') fail(ErrorCode.MissingTopic, ZmMessage.MissingTopic);
  if (typeof m.topic !== 'string' || !TOPICS.includes(m.topic)) fail(ErrorCode.UnknownTopic, ZmMessage.UnsupportedTopic);
  const topic = m.topic as Topic;
  if (m.command === 'unsubscribe') return { command: 'unsubscribe', monitorId: target, topic, requestId };
  if (topic === 'status') {
    return { command: 'subscribe', monitorId: target, topic, intervalMs: readInterval(m.interval_ms, fail), requestId };
  }
  if (topic === 'events') {
    if (m.since !== undefined && m.since !== null && (typeof m.since !== 'string' || !/^\d+-\d+$/.test(m.since))) {
      fail(ErrorCode.BadRequest, 'since must be an event id such as "1700000000000-0"');
    }
    if (m.epoch !== undefined && m.epoch !== null && (typeof m.epoch !== 'string' || !/^[0-9a-f]{1,64}$/.test(m.epoch))) {
      fail(ErrorCode.BadRequest, 'epoch must be the epoch string of an earlier event or codec message');
    }
    return {
      command: 'subscribe', monitorId: target, topic,
      since: (m.since as string | undefined) ?? undefined, epoch: (m.epoch as string | undefined) ?? undefined, requestId,
    };
  }
  if (topic === 'image') {
    const picture = readPicture(m, readString(m.format, 'format', 'jpeg', fail));
    return { command: 'subscribe', monitorId: target, topic, intervalMs: readPictureInterval(m, fail), picture, requestId };
  }
  const codec = readCodec(m.codec, fail);
  if (codec === 'mjpeg') {
    // A number is the JPEG quality; "main"/"sub" names a video stream, which pictures do not take.
    const picture = readPicture({ ...m, quality: typeof m.quality === 'string' ? undefined : m.quality }, 'jpeg');
    return { command: 'subscribe', monitorId: target, topic: 'stream', codec, quality: 'main', keyframesOnly: false, intervalMs: readPictureInterval(m, fail), picture, requestId };
  }
  return {
    command: 'subscribe', monitorId: target, topic: 'stream', codec, intervalMs: 0, picture: { format: 'jpeg' },
    quality: readQuality(m.quality, fail), keyframesOnly: readFlag(m.keyframes_only, 'keyframes_only', fail), requestId,
  };
}

/** `main` (the default) or `sub`, the monitor's second stream. */
function readQuality(v: unknown, fail: (c: ErrorCode, m: string) => never): Quality {
  if (v === undefined || v === null) return 'main';
  if (v !== 'main' && v !== 'sub') return fail(ErrorCode.BadRequest, 'quality must be "main" or "sub"');
  return v;
}

function readFlag(v: unknown, name: string, fail: (c: ErrorCode, m: string) => never): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') return fail(ErrorCode.BadRequest, `${name} must be true or false`);
  return v;
}

/** Size and quality go to the workers' checks as given: they name the bad field. */
function readPicture(m: Record<string, unknown>, format: string): PictureRequest {
  return { format, width: m.width ?? undefined, height: m.height ?? undefined, quality: m.quality ?? undefined };
}

/** `interval_ms` (the draft's), or `max_fps` (zmcast) as its inverse; clamped like status intervals. */
function readPictureInterval(m: Record<string, unknown>, fail: (c: ErrorCode, msg: string) => never): number {
  if (m.max_fps !== undefined && m.max_fps !== null && m.interval_ms === undefined) {
    if (typeof m.max_fps !== 'number' || !Number.isFinite(m.max_fps) || m.max_fps <= 0) return fail(ErrorCode.BadRequest, 'max_fps must be a positive number');
    return readInterval(1000 / m.max_fps, fail);
  }
  return readInterval(m.interval_ms, fail);
}

function readRequestId(v: unknown): RequestId | undefined {
  if (typeof v === 'string' && v.length <= 128) return v;
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  return undefined;
}

function readMonitorId(v: unknown, fallback: number | undefined, fail: (c: ErrorCode, m: string) => never): number {
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    return fail(ErrorCode.MissingMonitor, 'monitor_id is required on this endpoint');
  }
  const n = typeof v === 'string' && /^\d{1,9}$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    return fail(ErrorCode.BadRequest, 'monitor_id must be a non-negative integer');
  }
  if (fallback !== undefined && n !== fallback) return fail(ErrorCode.BadRequest, 'monitor_id does not match this endpoint');
  return n;
}

function readString(v: unknown, name: string, dflt: string, fail: (c: ErrorCode, m: string) => never): string {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'string' || v.length > 32) return fail(ErrorCode.BadRequest, `${name} must be a short string`);
  return v;
}

function readCodec(v: unknown, fail: (c: ErrorCode, m: string) => never): StreamCodec {
  const codec = readString(v, 'codec', 'mjpeg', fail);
  if (!STREAM_CODECS.includes(codec)) return fail(ErrorCode.UnsupportedCodec, ZmMessage.StreamUnavailable);
  return codec as StreamCodec;
}

function readInterval(v: unknown, fail: (c: ErrorCode, m: string) => never): number {
  if (v === undefined || v === null) return STATUS_INTERVAL.default;
  if (typeof v !== 'number' || !Number.isFinite(v)) return fail(ErrorCode.BadRequest, 'interval_ms must be a number');
  return Math.min(STATUS_INTERVAL.max, Math.max(STATUS_INTERVAL.min, Math.round(v)));
}

// ---- Replies (server → client, JSON text frames) -------------------------

export interface AckReply {
  type: 'ack';
  command?: string;
  topic?: Topic;
  interval_ms: number;
  monitor_id: number;
  /** `subscribe` `stream` only: the quality served, and whether only keyframes are sent. */
  quality?: Quality;
  keyframes_only?: boolean;
  /** Present (true) when the quality served is not the one asked: `sub` on a monitor without a sub-stream. */
  fallback?: true;
  request_id?: RequestId;
}

export interface StatusReply {
  type: 'status';
  monitor_id: number;
  monitor_name: string;
  connected: boolean;
  shm_valid: boolean;
  state_id: number;
  state: string;
  capture_fps: number;
  analysis_fps: number;
  capture_bandwidth: number;
  image_count: number;
  analysing: boolean;
  capturing: boolean;
  recording: boolean;
  signal: boolean;
  last_frame_score: number;
  last_event_id: number;
  heartbeat_time: number;
  startup_time: number;
  /** zmcast additions */
  online: boolean;
  capture_state: string;
  last_packet_age_ms: number | null;
  capture_node: string | null;
  generation: number;
  /** Whether what the camera sends reaches Redis: ok, backlog, redis_full, redis_error, fenced; null when offline. */
  publishing: string | null;
  /** True when the edge could not read a fresh record in time and answers from what it knew. */
  stale: boolean;
  /** The main stream's picture (0 before the first connection). */
  width: number;
  height: number;
  /** The monitor's sub-stream while capture runs it; null when it has none (or capture is not running). */
  sub: SubStreamStatus | null;
  request_id?: RequestId;
}

/** The sub-stream's part of a status reply: the same meanings as the main stream's fields. */
export interface SubStreamStatus {
  online: boolean;
  connected: boolean;
  capture_state: string;
  capture_fps: number;
  capture_bandwidth: number;
  width: number;
  height: number;
  generation: number;
  publishing: string | null;
  last_packet_age_ms: number | null;
}

export interface EventReply {
  type: 'event';
  monitor_id: number;
  event: string;
  message: string;
  /** zmcast additions: resumable id, time (ms), generation, and the epoch of the history the id belongs to. */
  id: string;
  time: number;
  generation: number;
  epoch: string;
}

export interface ErrorReply {
  type: 'error';
  code: ErrorCode;
  message: string;
  monitor_id?: number;
  request_id?: RequestId;
}

export interface CodecReply extends CodecConfigJson {
  type: 'codec';
  monitor_id: number;
  /** The stream the following packets belong to (binary header flag bit 1 says the same per packet); always sent on `/ws`. */
  quality?: Quality;
  /** The monitor's history in Redis; a new one means Redis lost the old (packets and events in between are gone). */
  epoch: string;
}

export interface DroppedReply {
  type: 'dropped';
  monitor_id: number;
  /** Video packets this client did not get since the last notice (0 when unknown, e.g. a lost history). */
  count: number;
  reason: DropReason;
}

/**
 * Why video was skipped: `slow_consumer` this client read too slowly;
 * `upstream` packets never reached Redis (capture dropped them while Redis
 * was slow, full or away); `stale` a backlog older than the live edge was
 * skipped after an outage; `history_lost` Redis lost the monitor's history.
 * In every case the next packet is a keyframe.
 */
export type DropReason = 'slow_consumer' | 'upstream' | 'stale' | 'history_lost';

/** Answer to an accepted in-band `auth`. */
export interface AuthReply {
  type: 'auth';
  user: string;
  /** ms since the epoch, or null when the credential does not expire. */
  expires_at: number | null;
  request_id?: RequestId;
}

/** Sent `auth.expiryWarningMs` before the credential expires: send a fresh one in-band to stay connected. */
export interface AuthExpiringReply {
  type: 'auth_expiring';
  expires_at: number;
}

export interface HelloReply {
  type: 'hello';
  protocol: number;
  server: string;
}

/** ZoneMinder draft payload metadata, sent as a text frame before the bytes. */
export interface PayloadMeta {
  type: 'stream' | 'image';
  request_id?: RequestId;
  format: string;
  content_type: string;
  monitor_id: number;
  width: number;
  height: number;
  line_size: number;
  colours: number;
  subpixel_order: number;
  image_count: number;
  sequence: number;
  keyframe: boolean;
  payload_bytes: number;
  /** zmcast additions */
  generation: number;
  capture_time: number;
  pts_us: number | null;
  /** Pictures: bytes per row of every plane ([rgba] or [Y, U, V]); `line_size` is the first. */
  line_sizes?: number[];
  /** Pictures: the stream decoded (`main` or `sub`), whose generation and sequence these are. */
  source_quality?: 'main' | 'sub';
}

export type Reply = AckReply | StatusReply | EventReply | ErrorReply | CodecReply | DroppedReply | HelloReply | PayloadMeta | AuthReply | AuthExpiringReply;

export function errorReply(e: ProtocolError): ErrorReply {
  const r: ErrorReply = { type: 'error', code: e.code, message: e.message };
  if (e.monitorId !== undefined) r.monitor_id = e.monitorId;
  if (e.requestId !== undefined) r.request_id = e.requestId;
  return r;
}
