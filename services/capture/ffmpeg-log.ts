/**
 * FFmpeg's own messages (a refused RTSP connection, a damaged file) go through
 * the structured logger instead of raw stderr, and its chatty info output (x264
 * statistics on every encoder close) is silenced.
 */
import '../../shared/polyfills.js';
import { AV_LOG_ERROR, AV_LOG_WARNING, Log } from 'node-av';
import { logger } from '../../shared/log.js';

const log = logger('ffmpeg');
let routed = false;

export function routeFfmpegLogs(): void {
  if (routed) return;
  routed = true;
  Log.setLevel(AV_LOG_WARNING);
  Log.setCallback((level, message) => {
    const msg = message.trim();
    if (level <= AV_LOG_ERROR) log.error(msg);
    else log.warn(msg);
  }, { maxLevel: AV_LOG_WARNING });
}
