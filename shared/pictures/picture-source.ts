/**
 * Which of a monitor's streams a picture is decoded from. The sub-stream
 * (ZoneMinder's SecondPath) costs a fraction of the main one to decode, so a
 * picture that fits within it comes from it while it is live; anything
 * larger, or any picture while the sub-stream is silent, comes from main.
 */
import type { CodecConfigJson } from '../codec.js';
import { decodeHeader } from '../packet.js';
import { monitorKeys, SUB_STREAMS_KEY, type Quality } from '../redis-keys.js';
import type { RedisClient } from '../redis.js';
import { outputSize, type PictureSpec } from './picture-spec.js';

/** A sub-stream whose newest packet is older than this is silent: pictures come from main. */
export const SUB_SILENT_MS = 1500;

export interface PictureSource {
  quality: Quality;
  /**
   * The spec to encode: from the sub-stream, with both sides resolved from
   * the main stream's aspect, so the picture has the size main would give.
   */
  spec: PictureSpec;
}

export async function pictureSource(redis: RedisClient, monitorId: number, spec: PictureSpec): Promise<PictureSource> {
  const main: PictureSource = { quality: 'main', spec };
  // No size asked: the camera's own size, which only main has.
  if (spec.width === undefined && spec.height === undefined) return main;
  const [mainKeys, subKeys] = [monitorKeys(monitorId), monitorKeys(monitorId, 'sub')];
  // Separate commands, not one MULTI: the set of sub-streams is in another Cluster slot than the monitor's keys.
  const [hasSub, mainConfig, subConfig, newest] = await Promise.all([
    redis.sismember(SUB_STREAMS_KEY, String(monitorId)),
    redis.hget(mainKeys.meta, 'config'),
    redis.hget(subKeys.meta, 'config'),
    redis.xrevrangeBuffer(subKeys.video, '+', '-', 'COUNT', 2) as Promise<[Buffer, Buffer[]][]>,
  ]);
  if (hasSub !== 1 || !mainConfig || !subConfig) return main;
  // The newest entry may be a codec config; the packet is then just before it.
  const packet = newest.find(([, fields]) => fields[0]?.toString() === 'p');
  if (!packet || Date.now() - decodeHeader(packet[1][1]).captureTime > SUB_SILENT_MS) return main;
  const full = JSON.parse(mainConfig) as CodecConfigJson;
  const sub = JSON.parse(subConfig) as CodecConfigJson;
  const wanted = outputSize(spec, full);
  if (wanted.width > sub.width || wanted.height > sub.height) return main;
  return { quality: 'sub', spec: { ...spec, width: wanted.width, height: wanted.height } };
}
