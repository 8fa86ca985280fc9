/**
 * Every pre-built frame a connection sends goes through its SocketWriter.
 * A socket that follows one monitor gets each frame written at once. A
 * montage socket (two or more video subscriptions) would cost one write per
 * monitor per frame; there frames are held for at most the coalescing window
 * and whatever is ready then goes out in one corked write (one writev):
 * 16 monitors at 25 fps become ~25 writes a second instead of 400.
 *
 * Order is kept: held frames leave in the order they came, and anything
 * written to the socket another way (JSON replies through ws) flushes them
 * first. Held bytes count in the send budget (send-budget.ts), so a slow
 * montage viewer is found exactly as before.
 */
import type { Socket } from 'node:net';
import { edgeMetrics } from '../../shared/metrics.js';
import { writeFrames, type Frame } from './frame.js';
import { setDirect } from './fanout-batch.js';
import { hold, letGo } from './packet-memory.js';

export interface CoalesceLimits {
  /** Longest a montage socket's frame waits to share a write; 0 writes every frame at once. */
  coalesceMs: number;
}

/** Writers holding frames, flushed together by one timer per window for the whole edge (not one per socket). */
const holding = new Set<SocketWriter>();
let flushTimer: NodeJS.Timeout | null = null;

function flushAll(): void {
  flushTimer = null;
  for (const w of holding) w.flush();
  holding.clear();
}

export class SocketWriter {
  private streams = 0;
  private held: Frame[] = [];
  private heldBytes = 0;
  private readonly m = edgeMetrics();

  constructor(
    private readonly socket: Socket,
    private readonly limits: CoalesceLimits,
  ) {}

  /** Video subscriptions on this socket: coalescing is for montages only. */
  get videoStreams(): number {
    return this.streams;
  }

  set videoStreams(n: number) {
    this.streams = n;
    if (this.direct) this.flush(); // what a montage held goes before any frame written at once
    setDirect(this.socket, this.direct);
  }

  /** Frames go to the socket as they come (not a coalescing montage). */
  get direct(): boolean {
    return this.limits.coalesceMs <= 0 || this.streams < 2;
  }

  /** Bytes held for the next write, not yet given to the socket. */
  get pendingBytes(): number {
    return this.heldBytes;
  }

  write(frames: readonly Frame[]): void {
    if (this.direct) {
      if (this.held.length > 0) this.flush(); // coalescing just ended: what is held goes first
      writeFrames(this.socket, frames);
      return;
    }
    for (const f of frames) {
      hold(f.memory); // maybe past its packet's GOP: its memory waits for the flush
      this.held.push(f);
      this.heldBytes += f.size;
    }
    holding.add(this);
    flushTimer ??= setTimeout(flushAll, this.limits.coalesceMs);
  }

  /** Writes what is held now (before anything else goes to the socket, and when the window ends). */
  flush(): void {
    if (this.held.length === 0) return;
    const frames = this.held;
    this.held = [];
    this.heldBytes = 0;
    holding.delete(this);
    if (!this.socket.destroyed) {
      writeFrames(this.socket, frames); // pins what Node queues
      this.m.coalescedWrites.inc();
      this.m.coalescedFrames.inc(frames.length);
    }
    for (const f of frames) letGo(f.memory);
  }

  /** The connection is gone: nothing held will be written. */
  discard(): void {
    for (const f of this.held) letGo(f.memory);
    this.held = [];
    this.heldBytes = 0;
    holding.delete(this);
  }
}
