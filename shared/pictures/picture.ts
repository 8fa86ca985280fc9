/**
 * A picture made by a worker, and its one binary form: the same bytes are the
 * cached Redis value, the entries of derived streams, and what edges read.
 *
 * Layout (little-endian), header then the image bytes:
 *   0  u8  magic 0x50 ('P')
 *   1  u8  version (2)
 *   2  u8  format (1 jpeg, 2 rgba, 3 yuv420p)
 *   3  u8  number of planes' line sizes (n)
 *   4  u32 monitor id
 *   8  u32 width
 *  12  u32 height
 *  16  u32 generation
 *  20  u32 sequence
 *  24  f64 capture wall-clock time, ms since the Unix epoch
 *  32  u8  flags: bit 0 = decoded from the sub-stream (quality `sub`)
 *  33  3 bytes reserved (0)
 *  36  n × u32 line sizes
 */
import type { Quality } from '../redis-keys.js';
import type { PictureFormat } from './picture-spec.js';

export interface Picture {
  monitorId: number;
  format: PictureFormat;
  /** image/jpeg | application/octet-stream */
  contentType: string;
  width: number;
  height: number;
  /** Bytes per row of each plane: [rgba] or [Y, U, V] for I420; rows may be padded. jpeg: []. */
  lineSizes: number[];
  data: Buffer;
  /** ms since epoch, of the frame shown */
  captureTime: number;
  /** The stream the frame was decoded from; generation and sequence are that stream's. */
  quality: Quality;
  /** Of the video packet the frame came from. */
  generation: number;
  sequence: number;
}

const MAGIC = 0x50;
const VERSION = 2;
const FIXED_BYTES = 36;
const FLAG_SUB = 1;
const FORMAT_CODES: Record<PictureFormat, number> = { jpeg: 1, rgba: 2, yuv420p: 3 };
const FORMATS: PictureFormat[] = ['jpeg', 'rgba', 'yuv420p'];

export function contentTypeOf(format: PictureFormat): string {
  return format === 'jpeg' ? 'image/jpeg' : 'application/octet-stream';
}

export class PictureFormatError extends Error {
  readonly code = 'bad_picture';
}

export function encodePicture(p: Picture): Buffer {
  const header = FIXED_BYTES + 4 * p.lineSizes.length;
  const out = Buffer.allocUnsafe(header + p.data.length);
  out[0] = MAGIC;
  out[1] = VERSION;
  out[2] = FORMAT_CODES[p.format];
  out[3] = p.lineSizes.length;
  out.writeUInt32LE(p.monitorId, 4);
  out.writeUInt32LE(p.width, 8);
  out.writeUInt32LE(p.height, 12);
  out.writeUInt32LE(p.generation >>> 0, 16);
  out.writeUInt32LE(p.sequence >>> 0, 20);
  out.writeDoubleLE(p.captureTime, 24);
  out.writeUInt32LE(p.quality === 'sub' ? FLAG_SUB : 0, 32);
  p.lineSizes.forEach((l, i) => out.writeUInt32LE(l, FIXED_BYTES + 4 * i));
  p.data.copy(out, header);
  return out;
}

/** The picture in `b`, its data a view into `b` (no copy). */
export function decodePicture(b: Buffer): Picture {
  if (b.length < FIXED_BYTES || b[0] !== MAGIC) throw new PictureFormatError('not a zmcast picture');
  if (b[1] !== VERSION) throw new PictureFormatError(`unsupported picture version ${b[1]}`);
  const format = FORMATS[b[2] - 1];
  if (!format) throw new PictureFormatError(`unknown picture format ${b[2]}`);
  const planes = b[3];
  const header = FIXED_BYTES + 4 * planes;
  if (b.length < header) throw new PictureFormatError('truncated picture header');
  return {
    monitorId: b.readUInt32LE(4),
    format,
    contentType: contentTypeOf(format),
    width: b.readUInt32LE(8),
    height: b.readUInt32LE(12),
    generation: b.readUInt32LE(16),
    sequence: b.readUInt32LE(20),
    captureTime: b.readDoubleLE(24),
    quality: (b[32] & FLAG_SUB) !== 0 ? 'sub' : 'main',
    lineSizes: Array.from({ length: planes }, (_, i) => b.readUInt32LE(FIXED_BYTES + 4 * i)),
    data: b.subarray(header),
  };
}
