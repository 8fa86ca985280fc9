/**
 * Slows password and hash guessing: past `max` failed logins from one client
 * address within a window, further attempts from it are refused without
 * being checked until the window ends. Keyed by address only: a per-user
 * lock would let anyone lock a victim out.
 */
import { AuthError, AuthErrorCode } from './errors.js';

interface Window {
  failures: number;
  resetAt: number;
}

export class FailureLimiter {
  private readonly windows = new Map<string, Window>();

  constructor(
    /** Failures allowed per window and address; 0 turns the limiter off. */
    private readonly max: number,
    private readonly windowMs = 60_000,
    private readonly maxKeys = 50_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Throws `rate_limited` when this address has used up its failures. */
  check(address: string): void {
    if (this.max <= 0) return;
    const w = this.windows.get(address);
    if (w && w.resetAt > this.now() && w.failures >= this.max) {
      const retry = Math.ceil((w.resetAt - this.now()) / 1000);
      throw new AuthError(AuthErrorCode.RateLimited, `Too many failed logins; try again in ${retry} s`, 'failure limit reached');
    }
  }

  fail(address: string): void {
    if (this.max <= 0) return;
    const now = this.now();
    let w = this.windows.get(address);
    if (!w || w.resetAt <= now) {
      if (!w && this.windows.size >= this.maxKeys) this.evict(now);
      w = { failures: 0, resetAt: now + this.windowMs };
      this.windows.set(address, w);
    }
    w.failures++;
  }

  private evict(now: number): void {
    for (const [k, w] of this.windows) if (w.resetAt <= now) this.windows.delete(k);
    // Still full: drop the oldest entries (insertion order) rather than grow without bound.
    for (const k of this.windows.keys()) {
      if (this.windows.size < this.maxKeys) break;
      this.windows.delete(k);
    }
  }
}
