/**
 * Slows password and hash guessing: past `max` failed logins from one client
 * address within a window, further attempts from it are refused without
 * being checked until the window ends. Keyed by address only: a per-user
 * lock would let anyone lock a victim out.
 *
 * A password or hash check is counted as a failure when it starts and given
 * back if it succeeds (or fails the way honest clients do), so guesses sent
 * in parallel cannot all be checked before the first one is counted. At most
 * MAX_IN_FLIGHT checks run for one address at a time: one address cannot fill
 * the bcrypt queue that every other login waits in.
 */
import { AuthError, AuthErrorCode } from './errors.js';

interface Window {
  failures: number;
  resetAt: number;
}

/** Password and hash checks one address may have running at once. */
const MAX_IN_FLIGHT = 8;

/** One check in progress, holding a failure until it is settled. */
export interface Attempt {
  /** The check failed like a guess (or was refused as busy): the failure stays counted. */
  failed(): void;
  /** It succeeded, or failed for a reason honest clients meet: the failure is given back. */
  passed(): void;
}

export class FailureLimiter {
  private readonly windows = new Map<string, Window>();
  private readonly inFlight = new Map<string, number>();

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

  /** A failure known only after the fact (a bad token): counted now. */
  fail(address: string): void {
    if (this.max <= 0) return;
    this.window(address).failures++;
  }

  /**
   * Starts a password or hash check from `address`, counting it as a failure
   * until settled. Throws `rate_limited` when the failures (those in progress
   * included) are used up, or MAX_IN_FLIGHT checks from it are running (that
   * cap holds with the failure limit off too: it protects the queue).
   */
  begin(address: string): Attempt {
    this.check(address);
    const running = this.inFlight.get(address) ?? 0;
    if (running >= MAX_IN_FLIGHT) {
      throw new AuthError(AuthErrorCode.RateLimited, 'Too many logins in progress; try again in 1 s', `${running} checks from this address in progress`);
    }
    this.inFlight.set(address, running + 1);
    const w = this.max > 0 ? this.window(address) : null;
    if (w) w.failures++;
    let settled = false;
    const settle = (keep: boolean) => {
      if (settled) return;
      settled = true;
      const n = (this.inFlight.get(address) ?? 1) - 1;
      if (n > 0) this.inFlight.set(address, n);
      else this.inFlight.delete(address);
      // A window that has rolled over since does not owe this failure back.
      if (w && !keep && this.windows.get(address) === w) w.failures--;
    };
    return { failed: () => settle(true), passed: () => settle(false) };
  }

  private window(address: string): Window {
    const now = this.now();
    let w = this.windows.get(address);
    if (!w || w.resetAt <= now) {
      if (!w && this.windows.size >= this.maxKeys) this.evict(now);
      w = { failures: 0, resetAt: now + this.windowMs };
      this.windows.set(address, w);
    }
    return w;
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
