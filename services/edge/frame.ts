/**
 * Pre-framed WebSocket messages. A packet's frame header is built once and the
 * same two buffers are written to every subscriber's socket, so fan-out costs
 * no per-viewer allocation, copy or JSON.
 */
import type { Socket } from 'node:net';

export interface Frame {
  header: Buffer;
  payload: Buffer;
  /** Bytes on the wire. */
  size: number;
}

const OP_TEXT = 0x1;
const OP_BINARY = 0x2;

function frame(opcode: number, payload: Buffer): Frame {
  const len = payload.length;
  const header = Buffer.allocUnsafe(len < 126 ? 2 : len < 65536 ? 4 : 10);
  header[0] = 0x80 | opcode; // FIN, no RSV bits: the edge never compresses video.
  if (len < 126) {
    header[1] = len;
  } else if (len < 65536) {
    header[1] = 126;
    header.writeUInt16BE(len, 2);
  } else {
    header[1] = 127;
    header.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    header.writeUInt32BE(len >>> 0, 6);
  }
  return { header, payload, size: header.length + len };
}

export const binaryFrame = (payload: Buffer): Frame => frame(OP_BINARY, payload);
export const textFrame = (text: string): Frame => frame(OP_TEXT, Buffer.from(text));

/**
 * Writes pre-built frames straight to the socket. Safe beside ws's own sends
 * because permessage-deflate is off, so ws writes each message synchronously
 * and frames never interleave.
 */
export function writeFrames(socket: Socket, frames: readonly Frame[]): void {
  socket.cork();
  for (const f of frames) {
    socket.write(f.header);
    socket.write(f.payload);
  }
  socket.uncork();
}
