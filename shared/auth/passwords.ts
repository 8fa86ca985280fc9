/**
 * Checks a password against a stored ZoneMinder `Users.Password`, recognised
 * the way auth.php `password_type` and zm_crypt.cpp do:
 *   `$2a$`/`$2b$`/`$2y$`  bcrypt (what ZoneMinder writes today);
 *   `*` + 40 hex          MySQL PASSWORD(): '*' + UPPER(hex(SHA1(SHA1_raw(pw))));
 *   `-ZM-…`               half-finished zmupdate migration: refused, as zms refuses it;
 *   shorter than 4 chars  refused (zm_crypt.cpp);
 *   anything else         plaintext, compared exactly (ZoneMinder's rule; warned about).
 *
 * Every failed check costs the same, so a user name cannot be told from its
 * answer time: one bcrypt at the highest cost among the stored hashes (the
 * expected cost). A wrong password for a cheaper hash is padded with dummy
 * checks of that hash's cost (2^(expected - cost) bcrypt rounds in all, the
 * same work); an unknown user, and a wrong password for a MySQL, plaintext,
 * too-short or -ZM- entry, get one dummy check at the expected cost.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Padding } from './check-pool.js';

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

/**
 * A bcrypt comparison, normally a `CheckPool` (worker threads); `pad` is work
 * added when it fails, `client` the address it is for (the pool takes clients in turn).
 */
export interface BcryptCompare {
  compare(plain: string, hash: string, pad?: Padding, client?: string): Promise<boolean>;
}

/** ZoneMinder's cost (PHP password_hash's default before PHP 8.4): the least a failed check costs. */
const MIN_EXPECTED_COST = 10;
/**
 * The most a failed check is made to cost (seconds of CPU in bcryptjs): a
 * stored hash above it costs more than an unknown name, but each check of it
 * already takes seconds, and padding never grows past 2^12 dummy checks.
 */
const MAX_EXPECTED_COST = 16;

/** The cost of a bcrypt hash (`$2b$12$…` → 12), or null for anything else (bcrypt takes 4 to 31). */
function bcryptCost(stored: string): number | null {
  const m = /^\$2[ayb]\$(\d\d)\$/.exec(stored);
  const cost = m ? Number(m[1]) : NaN;
  return cost >= 4 && cost <= 31 ? cost : null;
}

/** A well-formed bcrypt hash of that cost that no password matches: what failed checks are padded with. */
function dummyHash(cost: number): string {
  return `$2b$${String(cost).padStart(2, '0')}$pYVamy1JtZl22MluSAWpG.SYlpDAj0QTr1jYTvIfaxaXlDwnZNcAK`;
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
  private cost = MIN_EXPECTED_COST;

  constructor(private readonly opts: PasswordVerifierOptions) {
    this.cacheMs = opts.cacheMs ?? 5 * 60_000;
    this.cacheSize = opts.cacheSize ?? 1000;
    this.now = opts.now ?? Date.now;
  }

  /** Sets the expected cost from the stored hashes (config users, ZoneMinder's Users): the highest, at least 10. */
  expectHashes(stored: Iterable<string>): void {
    let cost = MIN_EXPECTED_COST;
    for (const h of stored) cost = Math.max(cost, bcryptCost(h) ?? 0);
    this.cost = Math.min(cost, MAX_EXPECTED_COST);
  }

  async verify(plain: string, stored: string, client = ''): Promise<PasswordCheck> {
    const format = passwordFormat(stored);
    let ok: boolean;
    switch (format) {
      case 'zm_migration':
      case 'too_short':
        await this.verifyAbsent(plain, client);
        return { ok: false, format, reason: 'unsupported_format' };
      case 'mysql':
        ok = constantTimeEqual(mysqlPasswordHash(plain), stored.toUpperCase());
        break;
      case 'plaintext':
        ok = constantTimeEqual(plain, stored);
        break;
      case 'bcrypt':
        return (await this.bcrypt(plain, stored, client)) ? { ok: true, format } : { ok: false, format, reason: 'mismatch' };
    }
    if (ok) return { ok, format };
    // Failing fast would tell these users from unknown ones.
    await this.verifyAbsent(plain, client);
    return { ok: false, format, reason: 'mismatch' };
  }

  /** For a user that does not exist (or has no password): the work of a failed check at the expected cost. */
  async verifyAbsent(plain: string, client = ''): Promise<void> {
    await this.opts.bcrypt.compare(plain, dummyHash(this.cost), undefined, client);
  }

  private async bcrypt(plain: string, stored: string, client: string): Promise<boolean> {
    const id = createHmac('sha256', this.key).update(stored).update('\0').update(plain, 'utf8').digest('base64');
    const now = this.now();
    const until = this.recent.get(id);
    if (until !== undefined && until > now) return true;
    const cost = bcryptCost(stored) ?? this.cost;
    // A hash dearer than any seen so far (added since the last look at the users) raises the bar at once.
    if (cost > this.cost) this.cost = Math.min(cost, MAX_EXPECTED_COST);
    const pad = cost < this.cost ? { hash: dummyHash(cost), times: 2 ** (this.cost - cost) - 1 } : undefined;
    const ok = await this.opts.bcrypt.compare(plain, stored, pad, client);
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
