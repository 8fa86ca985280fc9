import { describe, expect, it } from 'vitest';
import { monitorKeys, pictureKeys } from '../../shared/redis-keys.js';

/** Redis Cluster hashes only the part inside the first {…}. */
const hashTag = (key: string) => /\{([^}]+)\}/.exec(key)?.[1];

describe('Redis key schema', () => {
  it('puts every key of a monitor under one hash tag, so they share a cluster slot', () => {
    const keys = Object.values(monitorKeys(17));
    expect(new Set(keys).size).toBe(keys.length);
    expect(new Set(keys.map(hashTag))).toEqual(new Set(['m:17']));
  });

  it('keeps monitors apart', () => {
    expect(hashTag(monitorKeys(1).video)).not.toBe(hashTag(monitorKeys(11).video));
  });

  it('refuses ids that are not non-negative integers', () => {
    for (const bad of [-1, 1.5, Number.NaN]) expect(() => monitorKeys(bad)).toThrow(RangeError);
  });

  it('keeps picture keys in their monitor\'s slot and refuses variants that could forge a key', () => {
    const keys = Object.values(pictureKeys(17, 'jpeg-640x0-q80'));
    expect(new Set(keys.map(hashTag))).toEqual(new Set(['m:17']));
    for (const bad of ['a:b', 'x}{m:1', '']) expect(() => pictureKeys(1, bad)).toThrow(RangeError);
  });
});
