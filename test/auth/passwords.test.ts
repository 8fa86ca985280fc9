import { afterAll, describe, expect, it } from 'vitest';
import bcrypt from 'bcryptjs';
import { CheckPool } from '../../shared/auth/check-pool.js';
import { mysqlPasswordHash, passwordFormat, PasswordVerifier } from '../../shared/auth/passwords.js';
import { zmBcrypt } from '../zoneminder/fixtures.js';

/** The admin/admin row db/zm_create.sql.in seeds. */
const ZM_SEED_ADMIN = '$2b$12$NHZsm6AM2f2LQVROriz79ul3D6DnmFiZC.ZK5eqbF.ZWfwH9bqUJ6';

const pool = new CheckPool();
afterAll(() => pool.close());
const verifier = new PasswordVerifier({ bcrypt: pool });

describe('stored password formats', () => {
  it('recognises formats the way auth.php password_type does', () => {
    expect(passwordFormat('$2y$10$abcdefghijklmnopqrstuu')).toBe('bcrypt');
    expect(passwordFormat('$2a$10$x')).toBe('bcrypt');
    expect(passwordFormat('$2b$12$x')).toBe('bcrypt');
    expect(passwordFormat('*4ACFE3202A5FF5CF467898FC58AAB1D615029441')).toBe('mysql');
    expect(passwordFormat('-ZM-$2a$10$whatever')).toBe('zm_migration');
    expect(passwordFormat('abc')).toBe('too_short');
    expect(passwordFormat('plain-text')).toBe('plaintext');
  });

  it('computes MySQL PASSWORD() exactly (known value for "admin")', () => {
    expect(mysqlPasswordHash('admin')).toBe('*4ACFE3202A5FF5CF467898FC58AAB1D615029441');
  });
});

describe('password verification', () => {
  it('accepts ZoneMinder\'s seeded admin/admin bcrypt ($2b$12$) and nothing else', async () => {
    expect(await verifier.verify('admin', ZM_SEED_ADMIN)).toEqual({ ok: true, format: 'bcrypt' });
    expect(await verifier.verify('Admin', ZM_SEED_ADMIN)).toMatchObject({ ok: false, reason: 'mismatch' });
  });

  it('accepts $2y$ (PHP password_hash) and $2a$ hashes', async () => {
    expect((await verifier.verify('s3cret', zmBcrypt('s3cret'))).ok).toBe(true);
    const a = bcrypt.hashSync('s3cret', 4).replace(/^\$2b\$/, '$2a$');
    expect((await verifier.verify('s3cret', a)).ok).toBe(true);
    expect((await verifier.verify('wrong', a)).ok).toBe(false);
  });

  it('accepts the MySQL * SHA1 form', async () => {
    expect(await verifier.verify('admin', '*4ACFE3202A5FF5CF467898FC58AAB1D615029441')).toEqual({ ok: true, format: 'mysql' });
    expect((await verifier.verify('admin2', '*4ACFE3202A5FF5CF467898FC58AAB1D615029441')).ok).toBe(false);
  });

  it('refuses the -ZM- migration format even with the right password, as zms does', async () => {
    const zm = '-ZM-' + bcrypt.hashSync(mysqlPasswordHash('admin'), 4).replace(/^\$2b\$/, '$2a$');
    expect(await verifier.verify('admin', zm)).toEqual({ ok: false, format: 'zm_migration', reason: 'unsupported_format' });
  });

  it('compares plaintext exactly (ZoneMinder\'s rule) and refuses stored values under 4 characters', async () => {
    expect((await verifier.verify('letmein', 'letmein')).ok).toBe(true);
    expect((await verifier.verify('letmein ', 'letmein')).ok).toBe(false);
    expect(await verifier.verify('abc', 'abc')).toMatchObject({ ok: false, reason: 'unsupported_format' });
    expect((await verifier.verify('', '')).ok).toBe(false);
  });

  it('does not mistake a malformed bcrypt string for plaintext', async () => {
    expect((await verifier.verify('$2y$10$short', '$2y$10$short')).ok).toBe(false);
  });

  it('remembers a bcrypt success but never a failure, and forgets it when the stored hash changes', async () => {
    let calls = 0;
    const counting = new PasswordVerifier({ bcrypt: { compare: async (p, h) => { calls++; return pool.compare(p, h); } } });
    const h = zmBcrypt('pw');
    await counting.verify('pw', h);
    await counting.verify('pw', h);
    expect(calls).toBe(1);
    await counting.verify('nope', h);
    await counting.verify('nope', h);
    expect(calls).toBe(3);
    await counting.verify('pw', zmBcrypt('pw'));
    expect(calls).toBe(4);
  });
});

describe('bcrypt worker pool', () => {
  it('refuses with busy instead of queueing without end', async () => {
    const small = new CheckPool({ workers: 1, maxQueue: 2 });
    try {
      const h = bcrypt.hashSync('x', 8);
      const results = await Promise.allSettled(Array.from({ length: 6 }, () => small.compare('x', h)));
      const busy = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.code);
      expect(busy.length).toBeGreaterThan(0);
      expect(new Set(busy)).toEqual(new Set(['busy']));
      expect(results.filter((r) => r.status === 'fulfilled' && r.value === true).length).toBeGreaterThanOrEqual(3);
    } finally {
      await small.close();
    }
  });

  it('keeps the event loop free while a cost-12 hash is checked', async () => {
    const h = bcrypt.hashSync('x', 12);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const t0 = performance.now();
    await pool.compare('x', h);
    clearInterval(timer);
    const elapsed = performance.now() - t0;
    expect(ticks).toBeGreaterThan(elapsed / 5 / 4);
  });
});
