/**
 * What a caller asks a picture to be: format, size and JPEG quality. Parsed
 * once at the edge from user input; the worker trusts a parsed spec.
 */
export type PictureFormat = 'jpeg' | 'rgba' | 'yuv420p';
export const PICTURE_FORMATS: readonly PictureFormat[] = ['jpeg', 'rgba', 'yuv420p'];

export interface PictureSpec {
  format: PictureFormat;
  /** Wanted width; alone, the height follows the camera's aspect. */
  width?: number;
  /** Wanted height; alone, the width follows the camera's aspect. */
  height?: number;
  /** jpeg 1..100 */
  quality?: number;
}

export type PictureErrorCode = 'bad_request' | 'camera_down' | 'unsupported_codec' | 'overloaded' | 'timeout' | 'unknown_monitor';
const ERROR_CODES: readonly PictureErrorCode[] = ['bad_request', 'camera_down', 'unsupported_codec', 'overloaded', 'timeout', 'unknown_monitor'];

export class PictureError extends Error {
  constructor(readonly code: PictureErrorCode, message: string) {
    super(message);
  }

  /** How a worker states the error in a failed job (BullMQ keeps only a message). */
  toReason(): string {
    return `${this.code}: ${this.message}`;
  }

  /** The error a failed job's reason stands for; an unknown reason is the worker's fault, said as overloaded. */
  static fromReason(reason: string): PictureError {
    const colon = reason.indexOf(': ');
    const code = reason.slice(0, colon) as PictureErrorCode;
    if (colon > 0 && ERROR_CODES.includes(code)) return new PictureError(code, reason.slice(colon + 2));
    return new PictureError('overloaded', `the picture worker failed: ${reason}`);
  }
}

/** Largest side a picture may have (8K); anything above is a mistake or an attack. */
export const MAX_SIDE = 8192;
export const DEFAULT_QUALITY = 80;

/** Validates user input and throws PictureError('bad_request') naming the bad field. */
export function parsePictureSpec(raw: { format?: unknown; width?: unknown; height?: unknown; quality?: unknown }): PictureSpec {
  const format = raw.format ?? 'jpeg';
  if (typeof format !== 'string' || !PICTURE_FORMATS.includes(format as PictureFormat)) {
    throw new PictureError('bad_request', `format must be one of ${PICTURE_FORMATS.join(', ')}, got ${JSON.stringify(format)}`);
  }
  const spec: PictureSpec = { format: format as PictureFormat };
  const width = optionalInt('width', raw.width, 1, MAX_SIDE);
  const height = optionalInt('height', raw.height, 1, MAX_SIDE);
  const quality = optionalInt('quality', raw.quality, 1, 100);
  if (width !== undefined) spec.width = width;
  if (height !== undefined) spec.height = height;
  if (quality !== undefined) {
    if (spec.format !== 'jpeg') throw new PictureError('bad_request', `quality applies to jpeg only, not ${spec.format}`);
    spec.quality = quality;
  }
  return spec;
}

function optionalInt(field: string, raw: unknown, min: number, max: number): number | undefined {
  if (raw === undefined || raw === null || raw === '') return undefined;
  const n = typeof raw === 'string' && /^\s*\d+\s*$/.test(raw) ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new PictureError('bad_request', `${field} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

/**
 * The size a picture of a `source` frame gets: both sides given are taken as
 * they are, one side keeps the aspect, none keeps the source size. Even
 * sides for yuv420p (its chroma is subsampled by two).
 */
export function outputSize(spec: PictureSpec, source: { width: number; height: number }): { width: number; height: number } {
  let { width, height } = spec;
  if (width === undefined && height === undefined) ({ width, height } = source);
  else if (width === undefined) width = Math.max(1, Math.round((height! * source.width) / source.height));
  else if (height === undefined) height = Math.max(1, Math.round((width * source.height) / source.width));
  if (spec.format === 'yuv420p') return { width: even(width!), height: even(height!) };
  return { width: width!, height: height! };
}

const even = (n: number) => Math.max(2, n + (n % 2));

/** A short stable name for a spec: part of job ids and Redis keys (no ':' — BullMQ ids refuse it). */
export function specVariant(spec: PictureSpec): string {
  const q = spec.format === 'jpeg' ? `-q${spec.quality ?? DEFAULT_QUALITY}` : '';
  return `${spec.format}-${spec.width ?? 0}x${spec.height ?? 0}${q}`;
}
