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

let wire: Buffer | null = null;
let open = false;
const sockets: Socket[] = [];
const members = new Set<Socket>();
let fds = new Int32Array(64);
let written = new Int32Array(64);

/** A channel starts handing one packet to its viewers. */
export function beginFanout(): void {
  open = native !== null;
}

/**
 * Takes `frame` for `socket` into the open batch; false when it must be
 * written now (no batch, a TLS socket, something already queued, another frame).
 */
export function takeForFanout(socket: Socket, frame: Buffer): boolean {
  if (!open || (wire !== null && wire !== frame)) return false;
  if (socket.writableLength > 0 || (socket as { encrypted?: boolean }).encrypted || socket.destroyed) return false;
  wire = frame;
  sockets.push(socket);
  members.add(socket);
  return true;
}

/** Something else is about to be written to `socket`: the batch goes first, so order holds. */
export function flushFanoutBefore(socket: Socket): void {
  if (members.has(socket)) endFanout(open);
}

/** The packet has reached every viewer: write the batch. */
export function endFanout(reopen = false): void {
  open = reopen;
  const data = wire;
  const n = sockets.length;
  wire = null;
  if (data === null || n === 0) return;
  if (fds.length < n) {
    fds = new Int32Array(n * 2);
    written = new Int32Array(n * 2);
  }
  for (let i = 0; i < n; i++) fds[i] = fdOf(sockets[i]);
  native!.writeAll(fds.subarray(0, n), data, written);
  let leftovers = 0;
  for (let i = 0; i < n; i++) {
    const took = written[i];
    if (took === data.length) continue;
    leftovers++;
    const socket = sockets[i];
    // Partly taken: the rest is queued as any write is. Refused (EAGAIN, an error Node will meet
    // and report itself, a socket closed meanwhile): the whole frame goes through Node.
    if (took > 0) socket.write(data.subarray(took));
    else if (!socket.destroyed) socket.write(data);
  }
  sockets.length = 0;
  members.clear();
  const m = edgeMetrics();
  m.nativeWrites.inc(n);
  if (leftovers > 0) m.nativeLeftovers.inc(leftovers);
}

/** A socket's descriptor never changes while it is open; reading it from the handle crosses into C++ (2.5 % of the edge at 20 × 50). */
const fdCache = new WeakMap<Socket, number>();

function fdOf(socket: Socket): number {
  if (socket.destroyed) return -1;
  let fd = fdCache.get(socket);
  if (fd === undefined) {
    const handleFd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    fd = typeof handleFd === 'number' ? handleFd : -1;
    fdCache.set(socket, fd);
  }
  return fd;
}
