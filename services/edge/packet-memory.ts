/**
 * Packet memory, reused. Each packet the edge reads is copied once out of
 * the socket into memory of its own, with room in front for its WebSocket
 * frame header (frame.ts). Fresh memory for every packet was 10 MB/s of
 * external memory at 500 packets/s, and V8 counts external memory allocated
 * since its last mark-compact against the old generation's limit: at 20
 * monitors × 50 viewers the edge marked its whole heap every 1–2 s, each time
 * pausing every viewer (docs/performance.md). So memory comes back here when
 * its packet leaves its channel's GOP, and a later packet of about its size
 * takes it.
 *
 * Memory is given back only if nothing else can still hold it. The channel
 * gives back what its GOP drops. A montage's coalescing window holds frames
 * for a few milliseconds and says when it is done with them; memory given
 * back meanwhile waits for that. Whatever else may keep a packet's bytes past
 * the call that wrote them (a write Node queued, a one-shot request) pins the
 * memory first, and pinned memory is left to the garbage collector like any
 * other buffer. Memory given back is filled with POISON at once, so a holder
 * that was missed shows as a broken packet rather than as a later one; the
 * edge's tests check every packet each kind of viewer gets for that
 * (test/edge/packet-reuse.test.ts).
 */
import { edgeMetrics } from '../../shared/metrics.js';

/** Room for the longest WebSocket frame header (10 bytes) in front of a payload. */
export const HEADROOM = 10;
/** What memory given back is filled with. */
export const POISON = 0xdb;
/** Sizes are rounded up to a power of two from here… */
const MIN_CLASS_BITS = 12; // 4 KB
/** …to here; larger packets (a 4K keyframe) get memory of their own, never reused. */
const MAX_CLASS_BITS = 22; // 4 MB
/** Idle memory kept for reuse, all sizes together; past this, memory given back is left to the garbage collector. */
const MAX_IDLE_BYTES = 32 * 1024 * 1024;

export class PacketMemory {
  /** Something may hold these bytes past its write: never reused. */
  pinned = false;
  /** Given back and waiting in the free list. */
  idle = false;
  /** Held by montages' coalescing windows; given back while held, it goes back when the last lets go. */
  holds = 0;
  givenBackWhileHeld = false;
  /** Where the payload that may be framed in place starts (bytes in front are free for the header); -1 once framed. */
  payloadAt = -1;
  payloadEnd = 0;

  /** `sizeClass` -1: too large to pool. */
  constructor(readonly bytes: ArrayBuffer, readonly sizeClass: number) {}
}

const memoryOfBytes = new WeakMap<ArrayBufferLike, PacketMemory>();
const free: PacketMemory[][] = Array.from({ length: MAX_CLASS_BITS + 1 }, () => []);
let idleBytes = 0;
const m = edgeMetrics();
const taken = { reused: m.packetMemory.labels('reused'), new: m.packetMemory.labels('new') };

function sizeClassOf(bytes: number): number {
  const bits = Math.max(MIN_CLASS_BITS, 32 - Math.clz32(bytes - 1));
  return bits > MAX_CLASS_BITS ? -1 : bits;
}

/** A buffer of `len` bytes for a packet, with HEADROOM free in front of it. */
export function allocPacket(len: number): Buffer {
  const need = HEADROOM + len;
  const sizeClass = sizeClassOf(need);
  let memory = sizeClass < 0 ? undefined : free[sizeClass].pop();
  if (memory !== undefined) {
    memory.idle = false;
    idleBytes -= memory.bytes.byteLength;
    m.packetMemoryIdle.set(idleBytes);
    taken.reused.inc();
  } else {
    memory = new PacketMemory(new ArrayBuffer(sizeClass < 0 ? need : 1 << sizeClass), sizeClass);
    memoryOfBytes.set(memory.bytes, memory);
    taken.new.inc();
  }
  memory.payloadAt = HEADROOM;
  memory.payloadEnd = need;
  return Buffer.from(memory.bytes, HEADROOM, len);
}

/** The packet memory `buf` lies in; undefined for any other buffer. */
export function memoryOf(buf: Uint8Array): PacketMemory | undefined {
  return memoryOfBytes.get(buf.buffer);
}

/**
 * The end of `buf` from `start` on, as the payload to frame in place: what
 * lies in front of it has been copied out and may be overwritten (a pushed
 * entry's id and fields before its packet).
 */
export function payloadFrom(buf: Buffer, start: number): Buffer {
  const payload = buf.subarray(start);
  const memory = memoryOf(buf);
  if (memory !== undefined && memory.payloadAt === buf.byteOffset && buf.byteOffset + buf.length === memory.payloadEnd) memory.payloadAt = payload.byteOffset;
  return payload;
}

/** Nothing reuses this memory: something may hold it beyond what the edge can see. */
export function pin(memory: PacketMemory | null | undefined): void {
  if (memory) memory.pinned = true;
}

/**
 * Gives the memory of `buf` back for reuse, unless it is pinned, too large,
 * or the pool is full. The caller guarantees that nothing uses `buf` or any
 * buffer over the same memory from now on.
 */
export function giveBack(buf: Uint8Array): void {
  const memory = memoryOf(buf);
  if (memory === undefined || memory.pinned || memory.idle) return;
  if (memory.holds > 0) {
    memory.givenBackWhileHeld = true;
    return;
  }
  putBack(memory);
}

/** Frames in this memory are held for a while (a coalescing window): it is not reused until let go. */
export function hold(memory: PacketMemory | null): void {
  if (memory) memory.holds++;
}

/** The holder is done with the frame (written, or never will be). */
export function letGo(memory: PacketMemory | null): void {
  if (!memory || --memory.holds > 0 || !memory.givenBackWhileHeld) return;
  memory.givenBackWhileHeld = false;
  if (!memory.pinned) putBack(memory);
}

function putBack(memory: PacketMemory): void {
  new Uint8Array(memory.bytes).fill(POISON);
  if (memory.sizeClass < 0 || idleBytes + memory.bytes.byteLength > MAX_IDLE_BYTES) return;
  memory.idle = true;
  memory.payloadAt = -1;
  idleBytes += memory.bytes.byteLength;
  free[memory.sizeClass].push(memory);
  m.packetMemoryIdle.set(idleBytes);
}
