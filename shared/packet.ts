/**
 * The self-describing binary packet. Capture stores exactly these bytes in the
 * monitor's Redis stream and the edge forwards them unchanged on `/ws`, so a
 * packet is encoded once in its whole life.
 *
 * Layout (little-endian), HEADER_BYTES then the codec payload:
 *   0  u8  magic 0x5a ('Z')
 *   1  u8  version (1)
 *   2  u8  kind (1 = video)
 *   3  u8  flags (bit 0 = keyframe, bit 1 = the monitor's sub-stream)
 *   4  u32 monitor id
 *   8  u32 generation (bumped on reconnect or codec change)
 *  12  u32 sequence (per generation, from 0)
 *  16  f64 capture wall-clock time, ms since the Unix epoch
 *  24  i64 pts in microseconds (NO_TIMESTAMP when unknown)
 *  32  i64 dts in microseconds (NO_TIMESTAMP when unknown)
 *  40  u32 duration in microseconds
 */
export const MAGIC = 0x5a;
export const VERSION = 1;
export const HEADER_BYTES = 44;
export const NO_TIMESTAMP = -(2n ** 63n);

export enum PacketKind {
  Video = 1,
}

const FLAG_KEYFRAME = 1;
const FLAG_SUB = 2;

export interface PacketHeader {
  kind: PacketKind;
  keyframe: boolean;
  /** A packet of the monitor's sub-stream (quality `sub`), not of its main stream; decodeHeader always sets it. */
  sub?: boolean;
  monitorId: number;
  generation: number;
  sequence: number;
  captureTime: number;
  pts: bigint;
  dts: bigint;
  duration: number;
}

export interface Packet extends PacketHeader {
  /** The codec bytes (Annex-B for H.264/H.265). */
  data: Buffer;
}

export class PacketFormatError extends Error {
  readonly code = 'bad_packet';
}

export function encodePacket(p: Omit<Packet, 'kind'> & { kind?: PacketKind }): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + p.data.length);
  out[0] = MAGIC;
  out[1] = VERSION;
  out[2] = p.kind ?? PacketKind.Video;
  out[3] = (p.keyframe ? FLAG_KEYFRAME : 0) | (p.sub ? FLAG_SUB : 0);
  out.writeUInt32LE(p.monitorId, 4);
  out.writeUInt32LE(p.generation >>> 0, 8);
  out.writeUInt32LE(p.sequence >>> 0, 12);
  out.writeDoubleLE(p.captureTime, 16);
  out.writeBigInt64LE(p.pts, 24);
  out.writeBigInt64LE(p.dts, 32);
  out.writeUInt32LE(Math.max(0, Math.min(p.duration, 0xffffffff)) >>> 0, 40);
  p.data.copy(out, HEADER_BYTES);
  return out;
}

/**
 * Reads the header without copying; throws PacketFormatError on garbage.
 * Written against Uint8Array/DataView so the browser page imports this same
 * module (the edge serves the compiled file at /lib/packet.js).
 */
export function decodeHeader(buf: Uint8Array): PacketHeader {
  if (buf.length < HEADER_BYTES || buf[0] !== MAGIC) throw new PacketFormatError('not a zmcast packet');
  if (buf[1] !== VERSION) throw new PacketFormatError(`unsupported packet version ${buf[1]}`);
  const view = new DataView(buf.buffer, buf.byteOffset, HEADER_BYTES);
  return {
    kind: buf[2] as PacketKind,
    keyframe: (buf[3] & FLAG_KEYFRAME) !== 0,
    sub: (buf[3] & FLAG_SUB) !== 0,
    monitorId: view.getUint32(4, true),
    generation: view.getUint32(8, true),
    sequence: view.getUint32(12, true),
    captureTime: view.getFloat64(16, true),
    pts: view.getBigInt64(24, true),
    dts: view.getBigInt64(32, true),
    duration: view.getUint32(40, true),
  };
}

export function decodePacket(buf: Buffer): Packet {
  return { ...decodeHeader(buf), data: buf.subarray(HEADER_BYTES) };
}

/** The codec payload of an encoded packet, without copying. */
export function packetPayload(buf: Buffer): Buffer {
  return buf.subarray(HEADER_BYTES);
}

export function isKeyframe(buf: Uint8Array): boolean {
  return (buf[3] & FLAG_KEYFRAME) !== 0;
}
