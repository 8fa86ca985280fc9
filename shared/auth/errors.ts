/**
 * Every way authentication can fail, with a stable code, the HTTP status of
 * the refused upgrade and the WebSocket close code of a refused in-band
 * login or a revoked connection. The public reason is short and safe to send;
 * `detail` is for the log only and never holds a secret.
 */
import { CloseCode } from '../protocol.js';

export const AuthErrorCode = {
  /** Nothing was presented and the mode needs something. */
  CredentialsRequired: 'credentials_required',
  /** Malformed: a repeated parameter, an oversized value, a wrong JSON type. */
  BadCredentials: 'bad_credentials',
  /** Unknown user, wrong password, wrong or stale legacy hash. One reason for all, so names cannot be probed. */
  InvalidCredentials: 'invalid_credentials',
  /** Bad signature, algorithm, issuer, audience, type or claims. */
  InvalidToken: 'invalid_token',
  TokenExpired: 'token_expired',
  /** A refresh token offered where only access tokens are allowed. */
  RefreshToken: 'refresh_token',
  /** TokenMinExpiry moved past the token, the password or secret changed, or the user went away. */
  Revoked: 'revoked',
  /** ZoneMinder's half-migrated `-ZM-` password format, which its C++ daemons refuse too. */
  UnsupportedPasswordFormat: 'unsupported_password_format',
  /** A kind of credential this mode or configuration does not take. */
  UnsupportedCredentials: 'unsupported_credentials',
  UserDisabled: 'user_disabled',
  /** Authenticated, but not allowed (for example Stream = None on a per-monitor socket). */
  Forbidden: 'forbidden',
  RateLimited: 'rate_limited',
  /** Too many password checks queued. */
  Busy: 'busy',
  /** The identity source (ZoneMinder database, JWKS) cannot be reached. */
  Unavailable: 'auth_unavailable',
} as const;
export type AuthErrorCode = (typeof AuthErrorCode)[keyof typeof AuthErrorCode];

/** RFC 6455 registry 1013 "Try Again Later"; protocol.ts has no name for it. */
export const CLOSE_TRY_AGAIN_LATER = 1013;

const STATUS: Record<AuthErrorCode, number> = {
  credentials_required: 401,
  bad_credentials: 400,
  invalid_credentials: 401,
  invalid_token: 401,
  token_expired: 401,
  refresh_token: 401,
  revoked: 401,
  unsupported_password_format: 401,
  unsupported_credentials: 401,
  user_disabled: 403,
  forbidden: 403,
  rate_limited: 429,
  busy: 503,
  auth_unavailable: 503,
};

const CLOSE: Record<AuthErrorCode, number> = {
  credentials_required: CloseCode.AuthExpired,
  bad_credentials: CloseCode.PolicyViolation,
  invalid_credentials: CloseCode.AuthExpired,
  invalid_token: CloseCode.AuthExpired,
  token_expired: CloseCode.AuthExpired,
  refresh_token: CloseCode.AuthExpired,
  revoked: CloseCode.AuthRevoked,
  unsupported_password_format: CloseCode.AuthExpired,
  unsupported_credentials: CloseCode.AuthExpired,
  user_disabled: CloseCode.AuthRevoked,
  forbidden: CloseCode.AuthRevoked,
  rate_limited: CloseCode.RateLimited,
  busy: CLOSE_TRY_AGAIN_LATER,
  auth_unavailable: CLOSE_TRY_AGAIN_LATER,
};

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  429: 'Too Many Requests',
  503: 'Service Unavailable',
};

export class AuthError extends Error {
  readonly status: number;
  constructor(
    readonly code: AuthErrorCode,
    /** Safe to send to the client: names no user, secret or internal state. */
    readonly publicReason: string,
    /** For the log: why, in more detail. Never a token, password or hash. */
    readonly detail?: string,
  ) {
    super(publicReason);
    this.name = 'AuthError';
    this.status = STATUS[code];
  }

  /** The close code for an in-band login that failed, or a connection whose principal failed `revalidate()`. */
  get closeCode(): number {
    return CLOSE[this.code];
  }

  /** `HTTP/1.1 401 Unauthorized`-style reason phrase for the refused upgrade. */
  get statusText(): string {
    return STATUS_TEXT[this.status] ?? 'Error';
  }
}

export function isAuthError(err: unknown): err is AuthError {
  return err instanceof AuthError;
}

/** Shorthands used across the modes, so the public texts stay identical everywhere. */
export const fail = {
  required: () => new AuthError(AuthErrorCode.CredentialsRequired, 'Authentication required'),
  bad: (why: string) => new AuthError(AuthErrorCode.BadCredentials, why),
  invalid: (detail?: string) => new AuthError(AuthErrorCode.InvalidCredentials, 'Invalid username or password', detail),
  invalidToken: (detail?: string) => new AuthError(AuthErrorCode.InvalidToken, 'Invalid token', detail),
  expired: (detail?: string) => new AuthError(AuthErrorCode.TokenExpired, 'Token expired', detail),
  revoked: (detail?: string) => new AuthError(AuthErrorCode.Revoked, 'Credentials revoked; sign in again', detail),
  disabled: (detail?: string) => new AuthError(AuthErrorCode.UserDisabled, 'User is disabled', detail),
  unavailable: (detail?: string) => new AuthError(AuthErrorCode.Unavailable, 'Authentication service unavailable', detail),
};
