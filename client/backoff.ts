/**
 * How long a client waits before its next connection attempt: capped
 * exponential backoff with full jitter, so thousands of viewers dropped by
 * the same edge at the same moment spread their reconnects over the window
 * instead of arriving together on the edges that remain.
 */
export interface BackoffOptions {
  /** The window of the first attempt; it doubles with each failed attempt. */
  minMs: number;
  /** The largest window. */
  maxMs: number;
  /** Added in front of the window after close 4029 or HTTP 429: the edge asked for less, not sooner. */
  rateLimitedMinMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { minMs: 250, maxMs: 10_000, rateLimitedMinMs: 5_000 };

/** The delay before attempt `attempt` (1 for the first retry), uniform in its window. */
export function backoffDelay(attempt: number, opts: BackoffOptions, rateLimited: boolean, random = Math.random): number {
  const window = Math.min(opts.maxMs, opts.minMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round((rateLimited ? opts.rateLimitedMinMs : 0) + random() * window);
}
