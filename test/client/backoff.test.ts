/**
 * The reconnect delay: a window doubling from minMs to maxMs, the delay
 * uniform in it (full jitter), pushed back after a rate limit.
 */
import { describe, expect, it } from 'vitest';
import { backoffDelay, DEFAULT_BACKOFF } from '../../client/backoff.js';

describe('backoffDelay', () => {
  it('doubles the window from 250 ms per attempt and caps it at 10 s', () => {
    const top = (attempt: number) => backoffDelay(attempt, DEFAULT_BACKOFF, false, () => 1);
    expect([1, 2, 3, 4, 5, 6, 7, 8, 100].map(top)).toEqual([250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
  });

  it('draws the delay anywhere in the window, from 0', () => {
    expect(backoffDelay(3, DEFAULT_BACKOFF, false, () => 0)).toBe(0);
    expect(backoffDelay(3, DEFAULT_BACKOFF, false, () => 0.5)).toBe(500);
    const delays = Array.from({ length: 2000 }, () => backoffDelay(4, DEFAULT_BACKOFF, false));
    expect(Math.min(...delays)).toBeLessThan(200);
    expect(Math.max(...delays)).toBeGreaterThan(1800);
    expect(Math.max(...delays)).toBeLessThanOrEqual(2000);
  });

  it('waits at least rateLimitedMinMs after a rate limit, still jittered', () => {
    expect(backoffDelay(1, DEFAULT_BACKOFF, true, () => 0)).toBe(5000);
    expect(backoffDelay(1, DEFAULT_BACKOFF, true, () => 1)).toBe(5250);
    expect(backoffDelay(1, { minMs: 100, maxMs: 1000, rateLimitedMinMs: 30_000 }, true, () => 0.5)).toBe(30_050);
  });
});
