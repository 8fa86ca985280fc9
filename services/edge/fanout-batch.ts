/**
 * A packet's frame to all its viewers in one native call. While a channel
 * hands a packet to its viewers, the sockets that can take the frame at once
 * (plain TCP, nothing queued in Node) are collected; at the end of the
 * packet one call to `native/fanout.c` writes the frame to each with
 * write(2), and whatever a socket did not take goes to socket.write, which
 * queues it exactly as it would have queued the whole frame.
 *
 * Measured 2026-11-30 (docs/performance.md): socket.write spends several
 * microseconds per call in Node's stream machinery before the kernel sees a
 * byte, three times what nginx spends per write, and at 1,000 viewers that
 * was a third of the edge's CPU. Without the native module (no compiler at
 * install, or `edge.nativeWrites` off) every frame goes through socket.write
 * as before; the edge says which at start.
 */
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { logger } from '../../shared/log.js';
import { edgeMetrics } from '../../shared/metrics.js';
import type { Frame } from './frame.js';
import { pin } from './packet-memory.js';

interface NativeFanout {
  writeAll(fds: Int32Array, data: Buffer, written: Int32Array): void;
}

const log = logger('fanout');

function loadNative(): { native: NativeFanout | null; why: string } {
  const require = createRequire(import.meta.url);
  let why = '';
  // From services/edge (sources) or dist/services/edge (built).
  for (const path of ['../../build/Release/fanout.node', '../../../build/Release/fanout.node']) {
    try {
      return { native: require(path) as NativeFanout, why: path };
    } catch (err) {
      why = (err as Error).message.split('\n')[0];
    }
  }
  return { native: null, why };
}

let native: NativeFanout | null = null;

/** Turns native writes on or off (config `edge.nativeWrites`); returns whether they are on. */
export function useNativeWrites(wanted: boolean): boolean {
  if (!wanted) {
    native = null;
    log.info('fan-out writes: socket.write per viewer (edge.nativeWrites is off)');
    return false;
  }
  const loaded = loadNative();
  native = loaded.native;
  if (native) log.info('fan-out writes: one native call per packet');
  else log.warn('fan-out writes: socket.write per viewer; the native writer is not built (npm rebuild builds it)', { error: loaded.why });
  return native !== null;
}

/** The frame of the open batch. */
let batchFrame: Frame | null = null;
let open = false;
/** Bumped per batch, so "is this socket in the open batch" is one field compare, not a Set. */
let batchNo = 0;
const batch: Target[] = [];
let fds = new Int32Array(64);
let written = new Int32Array(64);

/** What the batch keeps per socket, found with one lookup per frame. */
export interface Target {
  socket: Socket;
  /** -1: never batched (TLS, or no descriptor). */
  fd: number;
  /** The batch it was last taken into. */
  batch: number;
  /** False while the socket's frames are held to share writes (a montage, socket-writer.ts): no lane for it. */
  direct: boolean;
}

/** A socket's descriptor never changes while it is open; reading it from the handle crosses into C++ (2.5 % of the edge at 20 × 50). */
const targets = new WeakMap<Socket, Target>();

function targetOf(socket: Socket): Target {
  let t = targets.get(socket);
  if (t === undefined) {
    const handleFd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    const plain = !(socket as { encrypted?: boolean }).encrypted && typeof handleFd === 'number';
    t = { socket, fd: plain ? handleFd : -1, batch: 0, direct: true };
    targets.set(socket, t);
  }
  return t;
}

/** A channel starts handing one packet to its viewers. */
export function beginFanout(): void {
  open = native !== null;
}

/**
 * Takes `frame` for `socket` into the open batch; false when it must be
 * written now (no batch, a TLS socket, something already queued, another frame).
 */
export function takeForFanout(socket: Socket, frame: Frame): boolean {
  if (!open || (batchFrame !== null && batchFrame !== frame)) return false;
  if (socket.writableLength > 0 || socket.destroyed) return false;
  const t = targetOf(socket);
  if (t.fd < 0) return false;
  if (batchFrame === null) batchNo++;
  batchFrame = frame;
  t.batch = batchNo;
  batch.push(t);
  return true;
}

/** Says whether `socket`'s frames are written at once (true) or held to share a write (a montage). */
export function setDirect(socket: Socket, direct: boolean): void {
  targetOf(socket).direct = direct;
}

/** The record a channel's fast lane keeps for `socket`; null when its frames cannot be batched. */
export function laneTarget(socket: Socket): Target | null {
  const t = targetOf(socket);
  return native !== null && t.fd >= 0 && t.direct ? t : null;
}

/**
 * Takes `frame` for every rider of a channel's fast lane in one loop, with
 * the checks takeForFanout makes and nothing else; riders it cannot take now
 * (something queued, destroyed, held for a montage) go to `refused`, for the
 * channel to deliver the usual way. Returns how many it took.
 */
export function takeLane<R extends { target: Target }>(riders: readonly R[], frame: Frame, refused: R[]): number {
  if (!open || (batchFrame !== null && batchFrame !== frame)) {
    for (const r of riders) refused.push(r);
    return 0;
  }
  if (batchFrame === null) batchNo++;
  batchFrame = frame;
  let taken = 0;
  for (let i = 0; i < riders.length; i++) {
    const t = riders[i].target;
    const s = t.socket;
    if (!t.direct || s.writableLength > 0 || s.destroyed) {
      refused.push(riders[i]);
      continue;
    }
    t.batch = batchNo;
    batch.push(t);
    taken++;
  }
  return taken;
}

const one = new Int32Array(1);
const oneWritten = new Int32Array(1);

/**
 * The same write(2) for one socket outside any batch (the reader's XREAD,
 * once per packet: through socket.write it ran eight stream functions, 4 % of
 * the edge at 1 × 100, measured 2026-11-30). Queued in Node when anything is
 * already queued there, when the kernel does not take it all, or without the
 * native writer. A frame of the open batch for the same socket goes first.
 */
export function writeNow(socket: Socket, data: Buffer): void {
  flushFanoutBefore(socket);
  if (native !== null && socket.writableLength === 0 && !socket.destroyed) {
    const t = targetOf(socket);
    if (t.fd >= 0) {
      one[0] = t.fd;
      native.writeAll(one, data, oneWritten);
      const took = oneWritten[0];
      if (took === data.length) return;
      if (took > 0) data = data.subarray(took);
    }
  }
  socket.write(data);
}

/** Something else is about to be written to `socket`: the batch goes first, so order holds. */
export function flushFanoutBefore(socket: Socket): void {
  if (batch.length > 0 && targets.get(socket)?.batch === batchNo) endFanout(open);
}

/** The packet has reached every viewer: write the batch. */
export function endFanout(reopen = false): void {
  open = reopen;
  const f = batchFrame;
  const n = batch.length;
  batchFrame = null;
  if (f === null || n === 0) return;
  const data = f.wire;
  if (fds.length < n) {
    fds = new Int32Array(n * 2);
    written = new Int32Array(n * 2);
  }
  // A socket destroyed since it was taken has closed its descriptor, which a new connection may now hold.
  for (let i = 0; i < n; i++) fds[i] = batch[i].socket.destroyed ? -1 : batch[i].fd;
  native!.writeAll(fds.subarray(0, n), data, written);
  let leftovers = 0;
  for (let i = 0; i < n; i++) {
    const took = written[i];
    if (took === data.length) continue;
    leftovers++;
    const socket = batch[i].socket;
    // Partly taken: the rest is queued as any write is. Refused (EAGAIN, an error Node will meet
    // and report itself, a socket closed meanwhile): the whole frame goes through Node.
    if (took > 0) socket.write(data.subarray(took));
    else if (!socket.destroyed) socket.write(data);
  }
  batch.length = 0;
  const m = edgeMetrics();
  m.nativeWrites.inc(n);
  if (leftovers === 0) return;
  m.nativeLeftovers.inc(leftovers);
  pin(f.memory); // what a socket did not take is queued in Node, which keeps the memory it lies in
}
