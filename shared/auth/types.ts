/**
 * The shapes the edge sees: what a client presented, who it turned out to be,
 * and the authenticator that turns one into the other.
 */
import type { AuthMode } from '../config.js';

export type { AuthMode };

/** Where a token was found, in the order it is preferred. */
export type TokenSource = 'authorization' | 'subprotocol' | 'jwt_token' | 'token' | 'message';

/**
 * Everything a client presented, syntax-checked but not yet verified. The
 * mode decides which field wins (ZoneMinder mode follows zms: token, then
 * relay-none user, then `auth=`, then user+password).
 */
export interface PresentedCredentials {
  token?: string;
  tokenSource?: TokenSource;
  /** Legacy ZoneMinder `auth=` hash (32 hex digits). */
  authHash?: string;
  user?: string;
  password?: string;
  /** `handshake` for the upgrade request, `message` for the in-band `auth` command. */
  via: 'handshake' | 'message';
}

export type AuthMethod = 'token' | 'auth_hash' | 'password' | 'trusted_user' | 'anonymous';

/** An authenticated viewer. Immutable except through `revalidate()`. */
export interface Principal {
  /** Login name; `''` for the anonymous principal of mode `none` or ZoneMinder with auth off. */
  readonly user: string;
  readonly method: AuthMethod;
  /** When the credential stops being valid (ms since the epoch), or null when it does not expire. */
  readonly expiresAt: number | null;
  /**
   * Whether this principal may watch the monitor: ZoneMinder's `Stream >= View`
   * and monitor rule, the config grant, or the JWT claim. Synchronous: the
   * rules were loaded at authentication and are refreshed by `revalidate()`.
   */
  canView(monitorId: number): boolean;
  /**
   * Re-reads what could have changed (user disabled, TokenMinExpiry bumped,
   * password or secret changed, permissions edited) and throws an `AuthError`
   * if the principal is no longer valid. After it resolves, `canView` answers
   * from the fresh rules: re-check open subscriptions.
   */
  revalidate(): Promise<void>;
}

export interface AuthStatus {
  mode: AuthMode;
  /** Facts an operator must see at start and on the admin listener's /readyz (auth off, default secret…). */
  warnings: string[];
}
