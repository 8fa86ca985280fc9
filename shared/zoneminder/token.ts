/**
 * HS256 access tokens in ZoneMinder's shape: `{iss, iat, exp, user, type}`,
 * signed with a raw shared secret (ZoneMinder's `ZM_AUTH_HASH_SECRET`, not
 * base64-decoded). Verification follows zms (jwt-cpp): HS256 only, `iss`
 * checked, exp/iat/nbf with no leeway, `type` must be `access`, `user` and
 * `iat` required. zmcast also requires `exp` (ZoneMinder always sets it; a
 * token without one would never expire). Config-mode tokens use the same
 * code with issuer `zmcast` and zmcast's own secret.
 */
import { errors, jwtVerify, SignJWT } from 'jose';
import { AuthError, AuthErrorCode, fail } from '../auth/errors.js';

export const ZM_ISSUER = 'ZoneMinder';

export interface AccessTokenClaims {
  user: string;
  /** seconds */
  iat: number;
  /** seconds */
  exp: number;
}

export interface VerifyOptions {
  secret: string;
  issuer: string;
  /** ms since the epoch; defaults to now. */
  now?: number;
}

export async function verifyAccessToken(token: string, o: VerifyOptions): Promise<AccessTokenClaims> {
  if (o.secret === '') throw fail.unavailable('no signing secret configured');
  const now = o.now ?? Date.now();
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, new TextEncoder().encode(o.secret), {
      algorithms: ['HS256'],
      issuer: o.issuer,
      requiredClaims: ['iat', 'exp', 'user', 'type'],
      clockTolerance: 0,
      currentDate: new Date(now),
    }));
  } catch (err) {
    throw mapJoseError(err);
  }
  if (payload.type === 'refresh') {
    throw new AuthError(AuthErrorCode.RefreshToken, 'Only access tokens are allowed; exchange the refresh token for an access token first');
  }
  if (payload.type !== 'access') throw fail.invalidToken('type claim is not "access"');
  if (typeof payload.user !== 'string' || payload.user === '') throw fail.invalidToken('user claim is not a non-empty string');
  const iat = payload.iat as number;
  const exp = payload.exp as number;
  if (!Number.isFinite(iat) || !Number.isFinite(exp)) throw fail.invalidToken('iat/exp are not numbers');
  // jwt-cpp refuses a token issued in the future (leeway 0); jose only checks iat against maxTokenAge.
  if (iat > Math.floor(now / 1000)) throw fail.invalidToken('iat is in the future');
  return { user: payload.user, iat, exp };
}

function mapJoseError(err: unknown): AuthError {
  if (err instanceof errors.JWTExpired) return fail.expired(`jose: ${err.claim} check failed`);
  if (err instanceof errors.JOSEError) return fail.invalidToken(`jose ${err.code}`);
  return fail.invalidToken('malformed token');
}

/**
 * Mints an access token the way ZoneMinder's HostController does (claims in
 * its order, HS256, header {"alg":"HS256","typ":"JWT"}), with the given
 * issuer. Used by config mode's `zmcast token`.
 */
export async function mintAccessToken(user: string, secret: string, ttlSec: number, issuer: string, now = Date.now()): Promise<string> {
  if (secret === '') throw new Error('cannot mint a token without a secret');
  if (!Number.isInteger(ttlSec) || ttlSec < 1) throw new Error('token lifetime must be a positive number of seconds');
  const iat = Math.floor(now / 1000);
  return new SignJWT({ iss: issuer, iat, exp: iat + ttlSec, user, type: 'access' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .sign(new TextEncoder().encode(secret));
}
