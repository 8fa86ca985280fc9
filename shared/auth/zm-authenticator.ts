/**
 * Mode `zoneminder`: the users, options and permissions of an existing
 * ZoneMinder database, checked in zms' order (src/zms.cpp):
 *   1. a token (access JWT, ZM_AUTH_HASH_SECRET);
 *   2. with ZM_AUTH_RELAY=none, a bare user name, only if auth.trustRelayNone;
 *   3. an `auth=` hash, for the named user or else every enabled user;
 *   4. user + password.
 * With ZM_OPT_USE_AUTH off everyone is let in, as zms does. The Config
 * options are re-read every auth.zmRefreshMs.
 */
import { logger } from '../log.js';
import { authMetrics } from '../metrics.js';
import { AnonymousPrincipal, type AuthBackend } from './backend.js';
import { AuthError, AuthErrorCode, fail } from './errors.js';
import type { PasswordVerifier } from './passwords.js';
import { canView, type AccessRules } from '../zoneminder/permissions.js';
import { matchAuthHash, type HashFinder } from '../zoneminder/auth-hash.js';
import type { ZmDatabase, ZmUser } from '../zoneminder/database.js';
import { optionWarnings, ZM_DEFAULT_SECRET, type ZmOptions } from '../zoneminder/options.js';
import { verifyAccessToken, ZM_ISSUER } from '../zoneminder/token.js';
import type { AuthMethod, PresentedCredentials, Principal } from './types.js';

const log = logger('auth');
const ENABLED_USERS_REUSE_MS = 2000;

export interface ZmAuthenticatorOptions {
  db: ZmDatabase;
  passwords: PasswordVerifier;
  /** Where a large auth= hash search runs: the check pool's worker, off the event loop. */
  findHash: HashFinder;
  refreshMs: number;
  trustRelayNone: boolean;
  /** IANA zone of the ZoneMinder server for auth= hashes; undefined = this process's zone. */
  timeZone?: string;
  now: () => number;
}

/** What a principal was authenticated with, so revalidation can tell when it stops holding. */
interface Binding {
  iat?: number;
  /** The stored password hash at login (hash and password logins). */
  storedPassword?: string;
  /** The ZM_AUTH_HASH_SECRET at login (token and hash logins). */
  secret?: string;
}

export class ZmAuthenticator implements AuthBackend {
  readonly mode = 'zoneminder' as const;
  private timer: NodeJS.Timeout | undefined;
  private reloading = false;
  /** Revalidations of one user that overlap share one read: an edge sweeping its connections costs one read per user. */
  private readonly inFlight = new Map<number, Promise<{ user: ZmUser | null; rules: AccessRules | null }>>();
  private enabledUsers: { until: number; load: Promise<ZmUser[]> } | undefined;
  private readonly plaintextWarned = new Set<number>();
  private readonly m = authMetrics();

  private constructor(private readonly o: ZmAuthenticatorOptions, private opts: ZmOptions) {}

  /** Reads the schema, options and password costs once (failing loudly), then keeps them fresh. */
  static async start(o: ZmAuthenticatorOptions): Promise<ZmAuthenticator> {
    await o.db.detectSchema();
    const auth = new ZmAuthenticator(o, await o.db.options());
    o.passwords.expectHashes(await o.db.bcryptPrefixes());
    auth.timer = setInterval(() => void auth.reloadOptions(), o.refreshMs);
    auth.timer.unref();
    return auth;
  }

  get options(): ZmOptions {
    return this.opts;
  }

  async reloadOptions(): Promise<void> {
    if (this.reloading) return;
    this.reloading = true;
    try {
      this.opts = await this.o.db.options();
      // A failed login costs what one at the dearest stored hash costs, whoever the name is.
      this.o.passwords.expectHashes(await this.o.db.bcryptPrefixes());
      this.m.optionReloads.inc({ result: 'ok' });
    } catch (err) {
      this.m.optionReloads.inc({ result: 'error' });
      this.m.sourceErrors.inc({ source: 'zoneminder' });
      log.warn('cannot re-read ZoneMinder options; keeping the last ones', { error: (err as Error).message });
    } finally {
      this.reloading = false;
    }
  }

  warnings(): string[] {
    return optionWarnings(this.opts, this.o.trustRelayNone);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.o.db.close();
  }

  async authenticate(p: PresentedCredentials, clientAddress: string): Promise<Principal> {
    const o = this.opts;
    if (!o.useAuth) return new AnonymousPrincipal(async () => { if (this.opts.useAuth) throw fail.revoked('ZoneMinder authentication was turned on'); });
    if (p.token !== undefined) return this.byToken(p.token, o);
    if (o.relay === 'none' && this.o.trustRelayNone && p.user !== undefined) return this.byTrustedUser(p.user, o);
    if (p.authHash !== undefined) return this.byHash(p.authHash, p.user, clientAddress, o);
    if (p.user !== undefined && p.password !== undefined) return this.byPassword(p.user, p.password, clientAddress, o);
    if (p.user !== undefined) {
      throw new AuthError(AuthErrorCode.UnsupportedCredentials, 'A password, auth hash or token is required', o.relay === 'none' ? 'relay none, bare user not trusted' : 'bare user');
    }
    throw fail.required();
  }

  /**
   * The secret tokens and hashes are checked with. Empty or ZoneMinder's
   * shipped default, they are refused: anyone can forge with the default. The
   * refusal reads like any bad token or hash, because "this ZoneMinder runs on
   * its default secret" tells an attacker that ZoneMinder's own API takes
   * forged tokens; the log line and the admin /readyz say why.
   */
  private usableSecret(o: ZmOptions, kind: 'token' | 'hash'): string {
    if (o.secret === '' || o.secret === ZM_DEFAULT_SECRET) {
      const detail = `ZM_AUTH_HASH_SECRET is ${o.secret === '' ? 'empty' : 'the shipped default'}: tokens and auth hashes are refused`;
      throw kind === 'token' ? fail.invalidToken(detail) : fail.invalid(detail);
    }
    return o.secret;
  }

  private async byToken(token: string, o: ZmOptions): Promise<Principal> {
    const secret = this.usableSecret(o, 'token');
    const claims = await verifyAccessToken(token, { secret, issuer: ZM_ISSUER, now: this.o.now() });
    const users = await this.read(() => this.o.db.usersByName(claims.user, o.caseInsensitiveUsernames));
    if (users.length !== 1) throw fail.revoked(users.length ? 'token user name is ambiguous' : 'token user no longer exists');
    const user = users[0];
    if (!user.enabled) throw fail.disabled();
    if (user.tokenMinExpiry > claims.iat) throw fail.revoked('token issued before TokenMinExpiry');
    return this.principal(user, 'token', claims.exp * 1000, { iat: claims.iat, secret });
  }

  private async byTrustedUser(name: string, o: ZmOptions): Promise<Principal> {
    const users = await this.read(() => this.o.db.usersByName(name, o.caseInsensitiveUsernames));
    if (users.length !== 1 || !users[0].enabled) throw fail.invalid('relay none: no single enabled user of that name');
    return this.principal(users[0], 'trusted_user', null, {});
  }

  private async byHash(hash: string, name: string | undefined, clientAddress: string, o: ZmOptions): Promise<Principal> {
    const secret = this.usableSecret(o, 'hash');
    const candidates = await this.read(async () => name === undefined
      ? this.allEnabledUsers()
      : (await this.o.db.usersByName(name, o.caseInsensitiveUsernames)).filter((u) => u.enabled));
    const match = await matchAuthHash(hash, candidates, {
      secret,
      remoteAddr: o.hashIps ? clientAddress : '',
      ttlHours: o.hashTtl,
      now: this.o.now(),
      timeZone: this.o.timeZone,
    }, (presented, prefixes, suffixes) => this.o.findHash(presented, prefixes, suffixes, clientAddress));
    if (!match) throw fail.invalid('auth hash matches no enabled user within the TTL window');
    const user = match.candidate;
    return this.principal(user, 'auth_hash', match.expiresAt, { storedPassword: user.password, secret });
  }

  private async byPassword(name: string, password: string, clientAddress: string, o: ZmOptions): Promise<Principal> {
    const users = await this.read(() => this.o.db.usersByName(name, o.caseInsensitiveUsernames));
    if (users.length !== 1) {
      await this.o.passwords.verifyAbsent(password, clientAddress);
      throw fail.invalid(users.length ? 'user name is ambiguous' : 'no such user');
    }
    const user = users[0];
    const check = await this.o.passwords.verify(password, user.password, clientAddress);
    if (!check.ok) {
      if (check.format === 'zm_migration') {
        throw new AuthError(
          AuthErrorCode.UnsupportedPasswordFormat,
          'Password is in ZoneMinder\'s unfinished -ZM- format; sign in to the ZoneMinder web console once to convert it',
          `user id ${user.id} has a -ZM- password`,
        );
      }
      throw fail.invalid(check.reason === 'unsupported_format' ? `stored password of user id ${user.id} is too short to be a hash` : 'wrong password');
    }
    if (check.format === 'plaintext' && !this.plaintextWarned.has(user.id)) {
      this.plaintextWarned.add(user.id);
      log.warn('ZoneMinder user has a plaintext password; set it again in ZoneMinder to store a bcrypt hash', { user_id: user.id });
    }
    if (!user.enabled) throw fail.disabled();
    return this.principal(user, 'password', null, { storedPassword: user.password });
  }

  private async principal(user: ZmUser, method: AuthMethod, expiresAt: number | null, binding: Binding): Promise<Principal> {
    const rules = await this.read(() => this.o.db.accessRules(user));
    return new ZmPrincipal(this, user, method, expiresAt, rules, binding);
  }

  /** Everything that can revoke a principal, then fresh rules for canView. */
  async revalidate(p: ZmPrincipal): Promise<void> {
    const o = this.opts;
    if (!o.useAuth) return;
    const { user, rules } = await this.read(() => this.currentState(p.userId));
    if (!user || !rules || user.username !== p.user) throw fail.revoked('user no longer exists');
    if (!user.enabled) throw fail.disabled();
    const b = p.binding;
    if (b.iat !== undefined && user.tokenMinExpiry > b.iat) throw fail.revoked('TokenMinExpiry moved past the token');
    if (b.secret !== undefined && b.secret !== o.secret) throw fail.revoked('ZM_AUTH_HASH_SECRET changed');
    if (b.storedPassword !== undefined && b.storedPassword !== user.password) throw fail.revoked('password changed');
    if (p.method === 'trusted_user' && (o.relay !== 'none' || !this.o.trustRelayNone)) throw fail.revoked('ZM_AUTH_RELAY is no longer none');
    p.rules = rules;
  }

  /**
   * A hash without a user name is checked against every enabled user (zms).
   * Anyone can send one, so the list is shared for a moment instead of read
   * from the database per request.
   */
  private allEnabledUsers(): Promise<ZmUser[]> {
    const now = performance.now();
    if (!this.enabledUsers || this.enabledUsers.until <= now) {
      const load = this.o.db.enabledUsers();
      this.enabledUsers = { until: now + ENABLED_USERS_REUSE_MS, load };
      load.catch(() => { this.enabledUsers = undefined; });
    }
    return this.enabledUsers.load;
  }

  private currentState(id: number): Promise<{ user: ZmUser | null; rules: AccessRules | null }> {
    let load = this.inFlight.get(id);
    if (!load) {
      load = (async () => {
        const user = await this.o.db.userById(id);
        return { user, rules: user ? await this.o.db.accessRules(user) : null };
      })().finally(() => this.inFlight.delete(id));
      this.inFlight.set(id, load);
    }
    return load;
  }

  /** Database trouble is `auth_unavailable` (503), never mistaken for bad credentials. */
  private async read<T>(q: () => Promise<T>): Promise<T> {
    try {
      return await q();
    } catch (err) {
      if (err instanceof AuthError) throw err;
      this.m.sourceErrors.inc({ source: 'zoneminder' });
      throw fail.unavailable(`ZoneMinder database: ${(err as Error).message}`);
    }
  }
}

class ZmPrincipal implements Principal {
  readonly user: string;
  readonly userId: number;

  constructor(
    private readonly auth: ZmAuthenticator,
    u: ZmUser,
    readonly method: AuthMethod,
    readonly expiresAt: number | null,
    public rules: AccessRules,
    readonly binding: Binding,
  ) {
    this.user = u.username;
    this.userId = u.id;
  }

  canView(monitorId: number): boolean {
    return canView(this.rules, monitorId);
  }

  revalidate(): Promise<void> {
    return this.auth.revalidate(this);
  }
}
