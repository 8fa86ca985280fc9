import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { effectiveHashTtl, matchAuthHash, tmFields, zmAuthHash } from '../../shared/auth/zm-auth-hash.js';
import { zmAuthHashAt, zmBcrypt, SECRET } from './zm-fixtures.js';

const stored = zmBcrypt('pw');
const users = [
  { username: 'alice', password: zmBcrypt('a') },
  { username: 'admin', password: stored },
];
const HOUR = 3_600_000;

describe('legacy auth hash', () => {
  it('is md5 of secret, user, stored hash, address and local hour/mday/mon/year, unpadded', () => {
    const at = new Date(2026, 0, 5, 7, 30); // 5 Jan 2026 07:30 local: hour 7, mday 5, mon 0, year 126
    const expected = createHash('md5').update(`${SECRET}admin${stored}1.2.3.4750126`).digest('hex');
    expect(zmAuthHash(SECRET, 'admin', stored, '1.2.3.4', tmFields(at.getTime()))).toBe(expected);
    expect(zmAuthHashAt(SECRET, 'admin', stored, '1.2.3.4', at)).toBe(expected);
  });

  it('takes the time fields in the ZoneMinder server\'s zone when one is configured', () => {
    const utc = Date.UTC(2026, 11, 31, 20, 0); // 31 Dec 20:00 UTC = 1 Jan 2027 01:30 in Kolkata (UTC+5:30)
    expect(tmFields(utc, 'Asia/Kolkata')).toEqual({ hour: 1, mday: 1, mon: 0, year: 127 });
    expect(tmFields(utc, 'UTC')).toEqual({ hour: 20, mday: 31, mon: 11, year: 126 });
  });

  it('matches the current hour and, with TTL 2, the previous one only', () => {
    const now = Date.now();
    const current = zmAuthHashAt(SECRET, 'admin', stored, '', new Date(now));
    const previous = zmAuthHashAt(SECRET, 'admin', stored, '', new Date(now - HOUR));
    const older = zmAuthHashAt(SECRET, 'admin', stored, '', new Date(now - 2 * HOUR));
    const o = { secret: SECRET, remoteAddr: '', ttlHours: 2, now };
    expect(matchAuthHash(current, users, o)?.candidate.username).toBe('admin');
    expect(matchAuthHash(previous, users, o)).toMatchObject({ hoursBack: 1 });
    expect(matchAuthHash(older, users, o)).toBeNull();
    expect(matchAuthHash(older, users, { ...o, ttlHours: 3 })).toMatchObject({ hoursBack: 2 });
  });

  it('treats a TTL of 0 as 2 hours, as zms does', () => {
    expect(effectiveHashTtl(0)).toBe(2);
    const now = Date.now();
    const previous = zmAuthHashAt(SECRET, 'admin', stored, '', new Date(now - HOUR));
    expect(matchAuthHash(previous, users, { secret: SECRET, remoteAddr: '', ttlHours: 0, now })).not.toBeNull();
  });

  it('binds the hash to the client address when ZM_AUTH_HASH_IPS is on', () => {
    const now = Date.now();
    const h = zmAuthHashAt(SECRET, 'admin', stored, '198.51.100.7', new Date(now));
    expect(matchAuthHash(h, users, { secret: SECRET, remoteAddr: '198.51.100.7', ttlHours: 2, now })).not.toBeNull();
    expect(matchAuthHash(h, users, { secret: SECRET, remoteAddr: '198.51.100.8', ttlHours: 2, now })).toBeNull();
  });

  it('expires at the end of the window: the hash hour plus TTL hours', () => {
    const now = new Date(2026, 4, 10, 14, 20, 5, 250).getTime();
    const h = zmAuthHashAt(SECRET, 'admin', stored, '', new Date(now - HOUR));
    const m = matchAuthHash(h, users, { secret: SECRET, remoteAddr: '', ttlHours: 2, now })!;
    expect(new Date(m.expiresAt)).toEqual(new Date(2026, 4, 10, 15, 0, 0, 0));
  });

  it('fails for another secret, user or stored password', () => {
    const now = Date.now();
    const h = zmAuthHashAt('other-secret', 'admin', stored, '', new Date(now));
    expect(matchAuthHash(h, users, { secret: SECRET, remoteAddr: '', ttlHours: 2, now })).toBeNull();
  });
});
