/**
 * Keeps a source's native work to one step at a time, so close() can wait for
 * the step in flight (an open, a blocked read, an encode running in a worker
 * thread) before the FFmpeg objects it uses are freed.
 */
import { SourceClosedError } from './errors.js';

export class SourceGuard {
  private readonly abort = new AbortController();
  private current: Promise<unknown> = Promise.resolve();
  private closing: Promise<void> | null = null;

  /** Aborted by close(): waits (pacing) should end on it. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  get closed(): boolean {
    return this.abort.signal.aborted;
  }

  /** Runs one step; rejects with SourceClosedError if the source was closed before or during it. */
  async run<T>(step: () => Promise<T>): Promise<T> {
    if (this.closed) throw new SourceClosedError();
    const p = step();
    this.current = p.catch(() => undefined);
    const result = await p;
    if (this.closed) throw new SourceClosedError();
    return result;
  }

  /**
   * Marks the source closed, lets `interrupt` unblock the step in flight, waits
   * for it, then runs `free`. Every later call shares the first call's promise.
   */
  close(interrupt: () => void, free: () => Promise<void>): Promise<void> {
    this.closing ??= (async () => {
      this.abort.abort();
      interrupt();
      await this.current;
      await free();
    })();
    return this.closing;
  }
}

/** For loops that read until the end: a close is an end, anything else is an error. */
export function endIfClosed(err: unknown): null {
  if (err instanceof SourceClosedError) return null;
  throw err;
}
