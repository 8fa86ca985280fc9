/**
 * One connection's send budget, measured on its socket's queue: every write
 * to a client (video, replies, status pushes, events, catch-ups) asks it
 * first, so a client that stops reading costs the edge at most the hard limit
 * plus one message, whatever it asks for.
 *
 *   ok         under the soft limit: write.
 *   over_soft  over it: skip what the next message replaces (video to the
 *              next keyframe, a status push), write what must arrive.
 *   closed     over the hard limit, or over the soft limit for longer than
 *              the hard time: the connection is being closed (4008).
 */
import type { Socket } from 'node:net';

export interface SendLimits {
  softLimitBytes: number;
  hardLimitBytes: number;
  hardLimitMs: number;
}

export type Room = 'ok' | 'over_soft' | 'closed';

export class SendBudget {
  private overSoftSince = 0;
  private exceeded = false;
  private waiting: Promise<boolean> | null = null;

  constructor(
    private readonly socket: Socket,
    private readonly limits: SendLimits,
    /** Called once, when the budget is first exceeded: closes the connection. */
    private readonly onExceeded: () => void,
    /** Bytes held for the socket and not written to it yet (a montage's coalescing window). */
    private readonly held: () => number = () => 0,
  ) {}

  /** Bytes meant for the socket and not yet taken by the kernel. */
  get queued(): number {
    return this.socket.writableLength + this.held();
  }

  check(): Room {
    if (this.exceeded) return 'closed';
    const queued = this.queued;
    if (queued <= this.limits.softLimitBytes) {
      this.overSoftSince = 0;
      return 'ok';
    }
    const now = Date.now();
    this.overSoftSince ||= now;
    if (queued > this.limits.hardLimitBytes || now - this.overSoftSince > this.limits.hardLimitMs) {
      this.exceeded = true;
      this.onExceeded();
      return 'closed';
    }
    return 'over_soft';
  }

  /**
   * Resolves true once the queue is back under the soft limit, false when the
   * connection closes or stays over it past the hard time: for writers that
   * page through a backlog and must not read the next page before the client
   * took the last one.
   */
  writable(): Promise<boolean> {
    const room = this.check();
    if (room !== 'over_soft') return Promise.resolve(room === 'ok');
    // One wait per connection, however many writers share it: one pair of socket listeners.
    this.waiting ??= new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.socket.off('drain', done);
        this.socket.off('close', done);
        this.waiting = null;
        resolve(this.check() === 'ok');
      };
      // Past the hard time check() closes the connection; the margin lets a draining socket finish.
      const timer = setTimeout(done, this.limits.hardLimitMs + 10);
      this.socket.once('drain', done);
      this.socket.once('close', done);
    });
    return this.waiting;
  }
}
