/**
 * The one object the edge talks to. It builds the configured mode, and around
 * every attempt adds what all modes share: the per-address failure limit,
 * metrics, one log line without secrets, expiry checks, and tolerance of a
 * briefly unreachable identity source during revalidation.
 *
 *   const auth = await createAuthenticator(config.auth);
 *   const { presented, clientAddress } = auth.fromRequest(req, url);   // may throw AuthError (400)
 *   const principal = await auth.authenticate(presented, clientAddress);  // throws AuthError
 */
import type { IncomingMessage } from 'node:http';
import type { AuthConfig } from '../config.js';
import { logger } from '../log.js';
import { authMetrics } from '../metrics.js';
import { AnonymousPrincipal, type AuthBackend } from './backend.js';
import { CheckPool } from './check-pool.js';
import { ConfigAuthenticator, mintToken } from './config-users.js';
import { clientAddress, extractCredentials, TrustedProxies } from './credentials.js';
import { AuthError, AuthErrorCode, fail, isAuthError } from './errors.js';
import { FailureLimiter, type Attempt } from './failure-limiter.js';
import { JwksAuthenticator } from './jwks.js';
import { PasswordVerifier } from './passwords.js';
import { ZmAuthenticator } from './zm-authenticator.js';
import { zmDbSettings, zmVariables } from '../zoneminder/conf.js';
import { ZM_DEFAULT_SECRET } from '../zoneminder/options.js';
import { mintAccessToken, ZM_ISSUER } from '../zoneminder/token.js';
import { ZmDatabase } from '../zoneminder/database.js';
import type { AuthMethod, AuthStatus, PresentedCredentials, Principal } from './types.js';

const log = logger('auth');

/**
 * Failures that look like guessing; expired or revoked credentials are honest
 * clients and do not count. `busy` counts too: refusing a guess for lack of
 * room must not leave it free to try again at once.
 */
const COUNTED: ReadonlySet<string> = new Set([
  AuthErrorCode.InvalidCredentials, AuthErrorCode.InvalidToken, AuthErrorCode.BadCredentials, AuthErrorCode.UnsupportedPasswordFormat,
  AuthErrorCode.Busy,
]);

/** Checks of a secret a person chose (or of many users' hashes): counted when they start, capped in flight. */
const GUESSABLE: ReadonlySet<AuthMethod> = new Set(['password', 'auth_hash']);

export interface AuthenticatorDeps {
  /** Where ZM_DB_* may be found besides zm.conf; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** The clock, ms since the epoch (tests). */
  now?: () => number;
  /** A ZoneMinder database to use instead of one built from zm.conf / ZM_DB_*. Closed with the authenticator. */
  zmDatabase?: ZmDatabase;
}

export class Authenticator {
  private readonly limiter: FailureLimiter;
  private readonly proxies: TrustedProxies;
  private readonly m = authMetrics();

  private constructor(
    private readonly backend: AuthBackend,
    private readonly config: AuthConfig,
    private readonly now: () => number,
    private readonly pool: CheckPool | null,
  ) {
    this.limiter = new FailureLimiter(config.failuresPerMinute, 60_000, 50_000, now);
    this.proxies = new TrustedProxies(config.trustedProxies);
    for (const mode of ['zoneminder', 'config', 'jwks', 'none'] as const) this.m.mode.set({ mode }, mode === config.mode ? 1 : 0);
  }

  static async create(config: AuthConfig, deps: AuthenticatorDeps = {}): Promise<Authenticator> {
    const now = deps.now ?? Date.now;
    const needsPasswords = config.mode === 'zoneminder' || config.mode === 'config';
    const pool = needsPasswords ? new CheckPool({ workers: 1, maxQueue: 64 }) : null;
    const g = authMetrics().passwordChecks;
    const passwords = pool && new PasswordVerifier({
      now,
      bcrypt: {
        compare: async (plain, hash, pad, client) => {
          g.inc();
          try {
            return await pool.compare(plain, hash, pad, client);
          } finally {
            g.dec();
          }
        },
      },
    });
    let backend: AuthBackend;
    try {
      switch (config.mode) {
        case 'zoneminder': {
          const db = deps.zmDatabase ?? ZmDatabase.connect(zmDbSettings(zmVariables(deps.env ?? process.env, config.zmConf)));
          backend = await ZmAuthenticator.start({
            db,
            passwords: passwords!,
            findHash: (presented, prefixes, suffixes, client) => pool!.findHash(presented, prefixes, suffixes, client),
            refreshMs: config.zmRefreshMs,
            trustRelayNone: config.trustRelayNone,
            timeZone: config.zmTimeZone || undefined,
            now,
          }).catch(async (err) => {
            await db.close().catch(() => {});
            throw err;
          });
          break;
        }
        case 'config':
          backend = new ConfigAuthenticator({ users: config.users, secret: config.secret, passwords: passwords!, now });
          break;
        case 'jwks':
          backend = await JwksAuthenticator.create({
            url: config.jwksUrl || undefined,
            file: config.jwksFile || undefined,
            issuer: config.jwksIssuer,
            audience: config.jwksAudience,
            algorithms: config.jwksAlgorithms,
            userClaim: config.jwksUserClaim,
            monitorsClaim: config.jwksMonitorsClaim,
            refreshMs: config.jwksRefreshMs,
            now,
          });
          break;
        case 'none':
          backend = noneBackend();
          break;
      }
    } catch (err) {
      await pool?.close();
      throw err;
    }
    const auth = new Authenticator(backend, config, now, pool);
    for (const w of auth.status().warnings) log.warn(w, { mode: config.mode });
    return auth;
  }

  /** Mode, and what an operator must know (auth off, default secret, no users…), for start-up logs and the admin /readyz. */
  status(): AuthStatus {
    const warnings = this.backend.warnings();
    if (this.config.mode === 'none') warnings.unshift('auth.mode is none: anyone who reaches the edge may watch every monitor');
    return { mode: this.config.mode, warnings };
  }

  /**
   * What an upgrade request presents, and from where. Throws `AuthError`
   * `bad_credentials` (400) for repeated or oversized parameters.
   */
  fromRequest(req: IncomingMessage, url?: URL): { presented: PresentedCredentials; clientAddress: string } {
    return {
      presented: extractCredentials(req, url, { queryPasswords: this.config.queryPasswords }),
      clientAddress: clientAddress(req, this.proxies),
    };
  }

  /** The client address alone (for connection caps), honouring auth.trustedProxies. */
  clientAddress(req: IncomingMessage): string {
    return clientAddress(req, this.proxies);
  }

  /**
   * Verifies presented credentials. Resolves to a Principal or throws an
   * `AuthError` (never anything else): map `err.status` to the refused
   * upgrade, `err.closeCode` to the close of an in-band login.
   */
  async authenticate(presented: PresentedCredentials, address: string): Promise<Principal> {
    const method = presentedMethod(presented);
    const t0 = performance.now();
    let attempt: Attempt | null = null;
    try {
      // A token costs an HMAC and cannot be guessed: it is counted when it fails.
      if (GUESSABLE.has(method)) attempt = this.limiter.begin(address);
      else this.limiter.check(address);
      const inner = await this.backend.authenticate(presented, address);
      if (inner.expiresAt !== null && inner.expiresAt <= this.now()) throw fail.expired('credential valid window already over');
      attempt?.passed();
      this.m.attempts.inc({ method, result: 'ok' });
      log.debug('authenticated', { user: inner.user, method: inner.method, client: address, via: presented.via });
      return new GuardedPrincipal(inner, this.config.revalidateGraceMs, this.now);
    } catch (e) {
      const err = asAuthError(e);
      if (attempt) {
        if (COUNTED.has(err.code)) attempt.failed();
        else attempt.passed();
      } else if (COUNTED.has(err.code)) this.limiter.fail(address);
      this.m.attempts.inc({ method, result: err.code });
      log.info('authentication refused', { code: err.code, method, client: address, via: presented.via, user: presented.user, detail: err.detail });
      throw err;
    } finally {
      this.m.duration.observe({ method }, (performance.now() - t0) / 1000);
    }
  }

  /**
   * An access token for a principal that has just proved who it is (the
   * edge's /login), signed as the mode's own tokens are (`zmcast token` in
   * config mode, ZoneMinder's API in zoneminder mode), so the WebSocket checks
   * it like any other. Null where the mode issues none (jwks, none, ZoneMinder
   * with auth off) or has no usable secret.
   */
  async issueToken(principal: Principal): Promise<{ token: string; expiresAt: number } | null> {
    const now = this.now();
    const iatMs = Math.floor(now / 1000) * 1000;
    const b = this.backend;
    if (b instanceof ConfigAuthenticator) {
      if (b.secret === '') return null;
      const ttl = this.config.tokenTtlSec;
      return { token: await mintToken(principal.user, b.secret, ttl, now), expiresAt: iatMs + ttl * 1000 };
    }
    if (b instanceof ZmAuthenticator) {
      const o = b.options;
      if (!o.useAuth || o.secret === '' || o.secret === ZM_DEFAULT_SECRET) return null;
      const ttl = (o.hashTtl > 0 ? o.hashTtl : 2) * 3600; // ZoneMinder's API: ZM_AUTH_HASH_TTL hours
      return { token: await mintAccessToken(principal.user, o.secret, ttl, ZM_ISSUER, now), expiresAt: iatMs + ttl * 1000 };
    }
    return null;
  }

  /** Whether a user and password may be exchanged for a token here (the page's sign-in form). */
  get passwordLogin(): boolean {
    const b = this.backend;
    if (b instanceof ConfigAuthenticator) return b.secret !== '';
    if (b instanceof ZmAuthenticator) return b.options.useAuth && b.options.secret !== '' && b.options.secret !== ZM_DEFAULT_SECRET;
    return false;
  }

  /**
   * Takes a re-read configuration (the CLI does this on SIGHUP). Config-mode
   * users and grants change; open connections follow at their next
   * revalidation. Other settings need a restart.
   */
  reload(config: AuthConfig): void {
    this.backend.reload?.(config);
  }

  async close(): Promise<void> {
    await this.backend.close();
    await this.pool?.close();
  }
}

export function createAuthenticator(config: AuthConfig, deps?: AuthenticatorDeps): Promise<Authenticator> {
  return Authenticator.create(config, deps);
}

/**
 * Adds to every principal: expiry enforced at revalidation, and a grace
 * period during which an unreachable identity source keeps the last answer
 * instead of closing every connection at once.
 */
class GuardedPrincipal implements Principal {
  private lastOk: number;
  private readonly m = authMetrics();

  constructor(private readonly inner: Principal, private readonly graceMs: number, private readonly now: () => number) {
    this.lastOk = now();
  }

  get user(): string {
    return this.inner.user;
  }

  get method(): AuthMethod {
    return this.inner.method;
  }

  get expiresAt(): number | null {
    return this.inner.expiresAt;
  }

  canView(monitorId: number): boolean {
    return this.inner.canView(monitorId);
  }

  async revalidate(): Promise<void> {
    try {
      if (this.expiresAt !== null && this.now() >= this.expiresAt) throw fail.expired();
      await this.inner.revalidate();
      this.lastOk = this.now();
      this.m.revalidations.inc({ result: 'ok' });
    } catch (e) {
      const err = asAuthError(e);
      if (err.code === AuthErrorCode.Unavailable && this.now() - this.lastOk < this.graceMs) {
        this.m.revalidations.inc({ result: 'tolerated' });
        log.warn('identity source unreachable; keeping the connection within the grace period', { user: this.user, detail: err.detail });
        return;
      }
      this.m.revalidations.inc({ result: err.code });
      log.info('credentials no longer valid', { user: this.user, code: err.code, detail: err.detail });
      throw err;
    }
  }
}

function noneBackend(): AuthBackend {
  return {
    mode: 'none',
    authenticate: async () => new AnonymousPrincipal(),
    warnings: () => [],
    close: async () => {},
  };
}

function presentedMethod(p: PresentedCredentials): AuthMethod {
  if (p.token !== undefined) return 'token';
  if (p.authHash !== undefined) return 'auth_hash';
  if (p.password !== undefined) return 'password';
  if (p.user !== undefined) return 'trusted_user';
  return 'anonymous';
}

function asAuthError(e: unknown): AuthError {
  if (isAuthError(e)) return e;
  return fail.unavailable((e as Error)?.message ?? String(e));
}
