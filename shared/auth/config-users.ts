/**
 * Mode `config`: users, bcrypt password hashes and per-monitor grants in the
 * zmcast config file, for clusters without ZoneMinder. Tokens are HS256 in
 * ZoneMinder's claim shape with issuer `zmcast` and zmcast's own
 * `auth.secret`; `mintToken` makes them (for `zmcast token`).
 */
import bcrypt from 'bcryptjs';
import type { AuthConfig, AuthUserSpec } from '../config.js';
import type { AuthBackend } from './backend.js';
import { AuthError, AuthErrorCode, fail } from './errors.js';
import type { PasswordVerifier } from './passwords.js';
import { mintAccessToken, verifyAccessToken } from '../zoneminder/token.js';
import type { PresentedCredentials, Principal } from './types.js';

export const ZMCAST_ISSUER = 'zmcast';

/** A token for a config-mode user: `{iss:"zmcast", iat, exp, user, type:"access"}`, HS256 with `auth.secret`. */
export function mintToken(user: string, secret: string, ttlSec: number, now = Date.now()): Promise<string> {
  return mintAccessToken(user, secret, ttlSec, ZMCAST_ISSUER, now);
}

/** A bcrypt hash for the `password` of a config user (`$2b$`, cost 12 by default). */
export function hashPassword(plain: string, cost = 12): Promise<string> {
  return bcrypt.hash(plain, cost);
}

export interface ConfigAuthenticatorOptions {
  users: readonly AuthUserSpec[];
  secret: string;
  passwords: PasswordVerifier;
  now: () => number;
}

export class ConfigAuthenticator implements AuthBackend {
  readonly mode = 'config' as const;
  private users: Map<string, AuthUserSpec>;
  private tokenSecret: string;

  constructor(private readonly o: ConfigAuthenticatorOptions) {
    this.users = new Map(o.users.map((u) => [u.name, u]));
    this.tokenSecret = o.secret;
    o.passwords.expectHashes(o.users.flatMap((u) => u.password ?? []));
  }

  /**
   * A re-read config file (SIGHUP): users, grants and the token secret. Open
   * connections are checked against them at their next revalidation (the edge
   * runs one at once): a token signed with a replaced secret no longer holds.
   */
  reload(config: AuthConfig): void {
    this.users = new Map(config.users.map((u) => [u.name, u]));
    this.tokenSecret = config.secret;
    this.o.passwords.expectHashes(config.users.flatMap((u) => u.password ?? []));
  }

  user(name: string): AuthUserSpec | undefined {
    return this.users.get(name);
  }

  get secret(): string {
    return this.tokenSecret;
  }

  warnings(): string[] {
    const w: string[] = [];
    if (this.users.size === 0) w.push('auth.mode is config and auth.users is empty: every connection is refused');
    if (this.tokenSecret === '') w.push('auth.secret is empty: tokens are refused and `zmcast token` cannot mint them');
    return w;
  }

  async close(): Promise<void> {}

  async authenticate(p: PresentedCredentials, clientAddress = ''): Promise<Principal> {
    if (p.token !== undefined) {
      // Answered like any bad token: how this edge is set up is for its log and admin /readyz.
      const secret = this.tokenSecret;
      if (secret === '') throw fail.invalidToken('auth.secret is empty: tokens are refused');
      const claims = await verifyAccessToken(p.token, { secret, issuer: ZMCAST_ISSUER, now: this.o.now() });
      const u = this.users.get(claims.user);
      if (!u) throw fail.revoked('token user is not configured');
      if (!u.enabled) throw fail.disabled();
      if (claims.iat < u.tokensNotBefore) throw fail.revoked('token issued before tokensNotBefore');
      return new ConfigPrincipal(this, u, 'token', claims.exp * 1000, { iat: claims.iat, secret });
    }
    if (p.authHash !== undefined) {
      throw new AuthError(AuthErrorCode.UnsupportedCredentials, 'auth= hashes are only accepted in ZoneMinder mode');
    }
    if (p.user !== undefined && p.password !== undefined) {
      const u = this.users.get(p.user);
      if (!u || u.password === undefined) {
        await this.o.passwords.verifyAbsent(p.password, clientAddress);
        throw fail.invalid(u ? 'user has no password (tokens only)' : 'no such user');
      }
      const check = await this.o.passwords.verify(p.password, u.password, clientAddress);
      if (!check.ok) throw fail.invalid('wrong password');
      if (!u.enabled) throw fail.disabled();
      return new ConfigPrincipal(this, u, 'password', null, null);
    }
    if (p.user !== undefined) throw new AuthError(AuthErrorCode.UnsupportedCredentials, 'A password or token is required');
    throw fail.required();
  }
}

class ConfigPrincipal implements Principal {
  readonly user: string;
  private monitors: ReadonlySet<number> | '*';
  private readonly password: string | undefined;

  constructor(
    private readonly source: ConfigAuthenticator,
    u: AuthUserSpec,
    readonly method: 'token' | 'password',
    readonly expiresAt: number | null,
    /** A token's iat (seconds, checked again against tokensNotBefore) and the secret that verified it. */
    private readonly token: { iat: number; secret: string } | null,
  ) {
    this.user = u.name;
    this.password = u.password;
    this.monitors = grants(u);
  }

  canView(monitorId: number): boolean {
    return this.monitors === '*' || this.monitors.has(monitorId);
  }

  /**
   * Follows a reloaded config file: a removed or disabled user, a bumped
   * tokensNotBefore, a new password or (for a token) a new secret ends the connection.
   */
  async revalidate(): Promise<void> {
    const u = this.source.user(this.user);
    if (!u) throw fail.revoked('user removed from the configuration');
    if (!u.enabled) throw fail.disabled();
    if (this.token !== null && this.token.iat < u.tokensNotBefore) throw fail.revoked('token issued before tokensNotBefore');
    if (this.token !== null && this.token.secret !== this.source.secret) throw fail.revoked('auth.secret changed');
    if (this.method === 'password' && u.password !== this.password) throw fail.revoked('password changed');
    this.monitors = grants(u);
  }
}

function grants(u: AuthUserSpec): ReadonlySet<number> | '*' {
  return u.monitors === '*' ? '*' : new Set(u.monitors);
}
