import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CheckPool } from '../../shared/auth/check-pool.js';
import { effectiveHashTtl, matchAuthHash, tmFields, zmAuthHash } from '../../shared/zoneminder/auth-hash.js';
import { zmAuthHashAt, zmBcrypt, SECRET } from './fixtures.js';

const stored = zmBcrypt('pw');
const users = [
  { username: 'alice', password: zmBcrypt('a') },
  { username: 'admin', password: stored },
];
const HOUR = 3_600_000;
/** A stored value per user: what the hash covers, not a real bcrypt hash (those take time to make). */
const zmBcryptLike = (i: number) => `$2y$10$${String(i).padStart(53, 'x')}`;

describe('legacy auth hash', () => {
  it('is md5 of secret, user, stored hash, address and local hour/mday/mon/year, unpadded', async () => {
    const at = new Date(2026, 0, 5, 7, 30); // 5 Jan 2026 07:30 local: hour 7, mday 5, mon 0, year 126
    const expected = createHash('md5').update(`${SECRET}admin${stored}1.2.3.4750126`).digest('hex');
    expect(zmAuthHash(SECRET, 'admin', stored, '1.2.3.4', tmFields(at.getTime()))).toBe(expected);
    expect(zmAuthHashAt(SECRET, 'admin', stored, '1.2.3.4', at)).toBe(expected);
  });

  it('takes the time fields in the ZoneMinder server\'s zone when one is configured', async () => {
    const utc = Date.UTC(2026, 11, 31, 20, 0); // 31 Dec 20:00 UTC = 1 Jan 2027 01:30 in Kolkata (UTC+5:30)
    expect(tmFields(utc, 'Asia/Kolkata')).toEqual({ hour: 1, mday: 1, mon: 0, year: 127 });
    expect(tmFields(utc, 'UTC')).toEqual({ hour: 20, mday: 31, mon: 11, year: 126 });
  });

  it('matches the current hour and, with TTL 2, the previous one only', async () => {
    const now = Date.now();
    const current = zmAuthHashAt(SECRET, 'admin', stored, '', new Date(now));
    const previous = zmAuthHashAt(SECRET, 'admin', stored, '', new Date(now - HOUR));
    const older = zmAuthHashAt(SECRET, 'admin', stored, '', new Date(now - 2 * HOUR));
    const o = { secret: SECRET, remoteAddr: '', ttlHours: 2, now };
    expect((await matchAuthHash(current, users, o))?.candidate.username).toBe('admin');
    expect(await matchAuthHash(previous, users, o)).toMatchObject({ hoursBack: 1 });
    expect(await matchAuthHash(older, users, o)).toBeNull();
    expect(await matchAuthHash(older, users, { ...o, ttlHours: 3 })).toMatchObject({ hoursBack: 2 });
  });

  it('treats a TTL of 0 as 2 hours, as zms does', async () => {
    expect(effectiveHashTtl(0)).toBe(2);
    const now = Date.now();
    const previous = zmAuthHashAt(SECRET, 'admin', stored, '', new Date(now - HOUR));
    expect(await matchAuthHash(previous, users, { secret: SECRET, remoteAddr: '', ttlHours: 0, now })).not.toBeNull();
  });

  it('binds the hash to the client address when ZM_AUTH_HASH_IPS is on', async () => {
    const now = Date.now();
    const h = zmAuthHashAt(SECRET, 'admin', stored, '198.51.100.7', new Date(now));
    expect(await matchAuthHash(h, users, { secret: SECRET, remoteAddr: '198.51.100.7', ttlHours: 2, now })).not.toBeNull();
    expect(await matchAuthHash(h, users, { secret: SECRET, remoteAddr: '198.51.100.8', ttlHours: 2, now })).toBeNull();
  });

  it('expires at the end of the window: the hash hour plus TTL hours', async () => {
    const now = new Date(2026, 4, 10, 14, 20, 5, 250).getTime();
    const h = zmAuthHashAt(SECRET, 'admin', stored, '', new Date(now - HOUR));
    const m = (await matchAuthHash(h, users, { secret: SECRET, remoteAddr: '', ttlHours: 2, now }))!;
    expect(new Date(m.expiresAt)).toEqual(new Date(2026, 4, 10, 15, 0, 0, 0));
  });

  it('finds the same user and hour in the check pool\'s worker as on the event loop, past INLINE_HASHES', async () => {
    const now = Date.now();
    const many = Array.from({ length: 400 }, (_, i) => ({ username: `user${i}`, password: zmBcryptLike(i) }));
    const h = zmAuthHashAt(SECRET, 'user399', many[399].password, '', new Date(now - 5 * HOUR));
    const o = { secret: SECRET, remoteAddr: '', ttlHours: 744, now };
    const pool = new CheckPool();
    try {
      let offLoop = 0;
      const found = await matchAuthHash(h, many, o, (...args) => (offLoop++, pool.findHash(...args)));
      expect(offLoop).toBe(1);
      expect(found).toMatchObject({ candidate: { username: 'user399' }, hoursBack: 5 });
      expect(await matchAuthHash(h, many.slice(0, 399), o, (...args) => pool.findHash(...args))).toBeNull();
    } finally {
      await pool.close();
    }
  });

  it('fails for another secret, user or stored password', async () => {
    const now = Date.now();
    const h = zmAuthHashAt('other-secret', 'admin', stored, '', new Date(now));
    expect(await matchAuthHash(h, users, { secret: SECRET, remoteAddr: '', ttlHours: 2, now })).toBeNull();
  });
});
