/**
 * The one place where a picture failure becomes what a client reads: a
 * protocol error (stable code, the draft's text) on the WebSocket, an HTTP
 * status with one line on the HTTP routes.
 */
import { ErrorCode, ProtocolError, ZmMessage, type RequestId } from '../../shared/protocol.js';
import { PictureError, type PictureErrorCode } from '../../shared/pictures/picture-spec.js';
import { logger } from '../../shared/log.js';
import type { PictureKind } from './cached-picture.js';

const log = logger('pictures');

const PROTOCOL_CODE: Record<PictureErrorCode, ErrorCode> = {
  bad_request: ErrorCode.BadRequest,
  unknown_monitor: ErrorCode.UnknownMonitor,
  camera_down: ErrorCode.CameraDown,
  unsupported_codec: ErrorCode.UnsupportedCodec,
  overloaded: ErrorCode.Overloaded,
  timeout: ErrorCode.Timeout,
};

const HTTP: Record<PictureErrorCode, [status: number, text: string]> = {
  bad_request: [400, ''],
  unknown_monitor: [404, 'Unknown monitor'],
  camera_down: [503, 'Camera is not delivering video'],
  unsupported_codec: [503, 'No worker can decode this camera\'s codec'],
  overloaded: [503, 'Picture workers are overloaded; try again'],
  timeout: [504, 'No picture in time'],
};

/** A picture that did not come, as the error reply of an `image` (or MJPEG `stream`) request. */
export function pictureProtocolError(err: unknown, kind: PictureKind, monitorId: number, requestId?: RequestId): ProtocolError {
  if (err instanceof ProtocolError) return err;
  const zmText = kind === 'stream' ? ZmMessage.MjpegUnavailable : ZmMessage.ImageUnavailable;
  if (!(err instanceof PictureError)) {
    log.error('picture failed', { monitor: monitorId, error: (err as Error)?.stack ?? String(err) });
    return new ProtocolError(ErrorCode.ImageUnavailable, zmText, requestId, monitorId);
  }
  const code = PROTOCOL_CODE[err.code] ?? ErrorCode.ImageUnavailable;
  // Bad input is named (which field); every other failure keeps the draft's text, the code says why.
  if (code === ErrorCode.BadRequest) return new ProtocolError(code, err.message, requestId, monitorId);
  if (code === ErrorCode.UnknownMonitor) return new ProtocolError(code, `Unknown monitor ${monitorId}`, requestId, monitorId);
  return new ProtocolError(code, zmText, requestId, monitorId);
}

/** The HTTP status and body line of a picture that did not come. */
export function pictureHttpError(err: unknown, monitorId: number): { status: number; text: string; retryAfter: boolean } {
  if (!(err instanceof PictureError)) {
    log.error('picture failed', { monitor: monitorId, error: (err as Error)?.stack ?? String(err) });
    return { status: 500, text: 'Internal error', retryAfter: false };
  }
  const [status, text] = HTTP[err.code] ?? [500, 'Internal error'];
  return { status, text: text || err.message, retryAfter: status === 503 };
}
