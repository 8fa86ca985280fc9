/**
 * Pre-framed WebSocket messages. A packet's frame (header and payload in one
 * buffer) is built once and the same buffer is written to every subscriber's
 * socket, so fan-out costs no per-viewer allocation, copy or JSON.
 */
import type { Socket } from 'node:net';
import { flushFanoutBefore, takeForFanout } from './fanout-batch.js';
import { memoryOf, pin, type PacketMemory } from './packet-memory.js';

export interface Frame {
  /** The whole frame as it goes on the wire: header, then payload. */
  wire: Buffer;
  /** Bytes on the wire. */
  size: number;
  /** Bytes of the message itself (the frame less its header). */
  payloadBytes: number;
  /** The packet memory the wire lies in (built in place), which a writer that may keep it pins; null for memory of its own. */
  memory: PacketMemory | null;
}

const OP_TEXT = 0x1;
const OP_BINARY = 0x2;

function frame(opcode: number, payload: Buffer): Frame {
  const len = payload.length;
  const headerBytes = len < 126 ? 2 : len < 65536 ? 4 : 10;
  let wire: Buffer;
  let inPlace: PacketMemory | null = null;
  // In place only for the payload a packet's memory was read for (a packet read alone, or the last field of a
  // pushed entry, whose earlier fields are copied out), once: the bytes in front then hold this header.
  const memory = memoryOf(payload);
  if (memory !== undefined && memory.payloadAt === payload.byteOffset && payload.byteOffset + len === memory.payloadEnd) {
    memory.payloadAt = -1;
    inPlace = memory;
    wire = Buffer.from(payload.buffer, payload.byteOffset - headerBytes, headerBytes + len);
  } else {
    // One copy of the payload per packet buys one plain write per viewer instead of a corked
    // two-buffer writev: measured 2026-11-30, the stream bookkeeping of cork/uncork was ~13% of the edge's CPU.
    wire = Buffer.allocUnsafe(headerBytes + len);
    payload.copy(wire, headerBytes);
  }
  wire[0] = 0x80 | opcode; // FIN, no RSV bits: the edge never compresses video.
  if (len < 126) {
    wire[1] = len;
  } else if (len < 65536) {
    wire[1] = 126;
    wire.writeUInt16BE(len, 2);
  } else {
    wire[1] = 127;
    wire.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    wire.writeUInt32BE(len >>> 0, 6);
  }
  return { wire, size: wire.length, payloadBytes: len, memory: inPlace };
}

export const binaryFrame = (payload: Buffer): Frame => frame(OP_BINARY, payload);
export const textFrame = (text: string): Frame => frame(OP_TEXT, Buffer.from(text));

/**
 * Writes pre-built frames straight to the socket, or into the packet's
 * native fan-out batch (fanout-batch.ts). Safe beside ws's own sends
 * because permessage-deflate is off, so ws writes each message synchronously
 * and frames never interleave. Frames Node could not write at once stay
 * queued in it, so their packet memory is pinned (packet-memory.ts).
 */
export function writeFrames(socket: Socket, frames: readonly Frame[]): void {
  if (frames.length === 1 && takeForFanout(socket, frames[0])) return;
  flushFanoutBefore(socket);
  if (frames.length === 1) {
    socket.write(frames[0].wire);
  } else {
    socket.cork();
    for (const f of frames) socket.write(f.wire);
    socket.uncork();
  }
  if (socket.writableLength > 0) for (const f of frames) pin(f.memory);
}
