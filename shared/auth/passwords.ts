/**
 * Checks a password against a stored ZoneMinder `Users.Password`, recognised
 * the way auth.php `password_type` and zm_crypt.cpp do:
 *   `$2a$`/`$2b$`/`$2y$`  bcrypt (what ZoneMinder writes today);
 *   `*` + 40 hex          MySQL PASSWORD(): '*' + UPPER(hex(SHA1(SHA1_raw(pw))));
 *   `-ZM-…`               half-finished zmupdate migration: refused, as zms refuses it;
 *   shorter than 4 chars  refused (zm_crypt.cpp);
 *   anything else         plaintext, compared exactly (ZoneMinder's rule; warned about).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export type PasswordFormat = 'bcrypt' | 'mysql' | 'zm_migration' | 'plaintext' | 'too_short';

export type PasswordCheck =
  | { ok: true; format: PasswordFormat }
  | { ok: false; format: PasswordFormat; reason: 'mismatch' | 'unsupported_format' };

export function passwordFormat(stored: string): PasswordFormat {
  if (stored.startsWith('-ZM-')) return 'zm_migration';
  if (/^\$2[ayb]\$/.test(stored)) return 'bcrypt';
  if (stored.length < 4) return 'too_short';
  if (stored.startsWith('*')) return 'mysql';
  return 'plaintext';
}

/** MySQL's pre-8 PASSWORD() function. */
export function mysqlPasswordHash(plain: string): string {
  const inner = createHash('sha1').update(plain, 'utf8').digest();
  return '*' + createHash('sha1').update(inner).digest('hex').toUpperCase();
}

export function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  // Compare digests so unequal lengths take the same time as equal ones.
  const key = randomBytes(16);
  const hx = createHmac('sha256', key).update(x).digest();
  const hy = createHmac('sha256', key).update(y).digest();
  return timingSafeEqual(hx, hy) && x.length === y.length;
}

/** A bcrypt comparison, normally a `BcryptPool` (worker threads). */
export interface BcryptCompare {
  compare(plain: string, hash: string): Promise<boolean>;
}

export interface PasswordVerifierOptions {
  bcrypt: BcryptCompare;
  /** How long a successful bcrypt check is remembered, so reconnecting clients cost one hash per window. */
  cacheMs?: number;
  cacheSize?: number;
  now?: () => number;
}

/**
 * Verifies passwords, remembering recent bcrypt successes under an HMAC of
 * (stored hash, password) with a per-process key, never the password itself.
 * A changed stored hash changes the key, so a password change is never served
 * from the cache.
 */
export class PasswordVerifier {
  private readonly key = randomBytes(32);
  private readonly recent = new Map<string, number>();
  private readonly cacheMs: number;
  private readonly cacheSize: number;
  private readonly now: () => number;

  constructor(private readonly opts: PasswordVerifierOptions) {
    this.cacheMs = opts.cacheMs ?? 5 * 60_000;
    this.cacheSize = opts.cacheSize ?? 1000;
    this.now = opts.now ?? Date.now;
  }

  async verify(plain: string, stored: string): Promise<PasswordCheck> {
    const format = passwordFormat(stored);
    switch (format) {
      case 'zm_migration':
      case 'too_short':
        return { ok: false, format, reason: 'unsupported_format' };
      case 'mysql':
        return constantTimeEqual(mysqlPasswordHash(plain), stored.toUpperCase()) ? { ok: true, format } : { ok: false, format, reason: 'mismatch' };
      case 'plaintext':
        return constantTimeEqual(plain, stored) ? { ok: true, format } : { ok: false, format, reason: 'mismatch' };
      case 'bcrypt':
        return (await this.bcrypt(plain, stored)) ? { ok: true, format } : { ok: false, format, reason: 'mismatch' };
    }
  }

  private async bcrypt(plain: string, stored: string): Promise<boolean> {
    const id = createHmac('sha256', this.key).update(stored).update('\0').update(plain, 'utf8').digest('base64');
    const now = this.now();
    const until = this.recent.get(id);
    if (until !== undefined && until > now) return true;
    const ok = await this.opts.bcrypt.compare(plain, stored);
    if (ok && this.cacheMs > 0) {
      if (this.recent.size >= this.cacheSize) {
        for (const [k, t] of this.recent) if (t <= now) this.recent.delete(k);
        if (this.recent.size >= this.cacheSize) this.recent.delete(this.recent.keys().next().value!);
      }
      this.recent.set(id, now + this.cacheMs);
    }
    return ok;
  }
}
