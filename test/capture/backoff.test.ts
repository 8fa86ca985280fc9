import { describe, expect, it } from 'vitest';
import { Backoff } from '../../services/capture/backoff.js';

describe('reconnect backoff', () => {
  it('doubles its ceiling from the floor up to the cap', () => {
    const top = new Backoff(500, 30_000, () => 1);
    expect(Array.from({ length: 8 }, () => top.next())).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
    const bottom = new Backoff(500, 30_000, () => 0);
    expect(Array.from({ length: 8 }, () => bottom.next())).toEqual(Array(8).fill(500));
  });

  it('spreads retries over the whole range (full jitter) and starts over after reset()', () => {
    const b = new Backoff(100, 10_000);
    const delays = Array.from({ length: 200 }, () => b.next()).slice(10);
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(100);
    expect(Math.max(...delays)).toBeLessThanOrEqual(10_000);
    expect(new Set(delays.map((d) => Math.floor(d / 1000))).size).toBeGreaterThan(5);
    b.reset();
    expect(b.next()).toBeLessThanOrEqual(200);
  });

  it('stays within the bounds when the floor is above the cap', () => {
    expect(new Backoff(500, 100, () => 0.5).next()).toBe(100);
  });
});
