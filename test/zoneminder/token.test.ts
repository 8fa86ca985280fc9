import { generateKeyPair, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { mintAccessToken, verifyAccessToken, ZM_ISSUER } from '../../shared/zoneminder/token.js';
import { authErrorFrom } from '../helpers/auth-error.js';
import { phpJwtEncode, SECRET, zmToken } from './fixtures.js';

const verify = (token: string, now = Date.now()) => verifyAccessToken(token, { secret: SECRET, issuer: ZM_ISSUER, now });

describe('ZoneMinder access tokens', () => {
  it('accepts a token minted exactly as ZoneMinder\'s HostController mints it', async () => {
    const now = Date.now();
    const claims = await verify(zmToken(SECRET, 'admin', { now }), now);
    expect(claims).toEqual({ user: 'admin', iat: Math.floor(now / 1000), exp: Math.floor(now / 1000) + 7200 });
  });

  it('uses the secret as raw bytes, not base64-decoded', async () => {
    const b64ish = 'c2VjcmV0LXRoYXQtbG9va3MtYmFzZTY0LWVuY29kZWQ=';
    const t = zmToken(b64ish, 'admin');
    expect((await verifyAccessToken(t, { secret: b64ish, issuer: ZM_ISSUER })).user).toBe('admin');
  });

  it('refuses refresh tokens with a reason that says what to do', async () => {
    const err = await authErrorFrom(verify(zmToken(SECRET, 'admin', { type: 'refresh' })));
    expect(err.code).toBe('refresh_token');
    expect(err.publicReason).toMatch(/Only access tokens/);
  });

  it('refuses alg:none tokens', async () => {
    const now = Math.floor(Date.now() / 1000);
    const t = phpJwtEncode({ iss: 'ZoneMinder', iat: now, exp: now + 60, user: 'admin', type: 'access' }, '', { typ: 'JWT', alg: 'none' });
    expect((await authErrorFrom(verify(t))).code).toBe('invalid_token');
  });

  it('refuses a token signed with another key', async () => {
    expect((await authErrorFrom(verify(zmToken('another-secret-entirely-0123456789', 'admin')))).code).toBe('invalid_token');
  });

  it('refuses HS512 and RS256 tokens: HS256 only', async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: 'ZoneMinder', iat: now, exp: now + 60, user: 'admin', type: 'access' };
    expect((await authErrorFrom(verify(phpJwtEncode(claims, SECRET, { typ: 'JWT', alg: 'HS512' })))).code).toBe('invalid_token');
    const { privateKey } = await generateKeyPair('RS256');
    const rs = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256' }).sign(privateKey);
    expect((await authErrorFrom(verify(rs))).code).toBe('invalid_token');
  });

  it('refuses a token from another issuer (jwt-cpp checks iss)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const t = phpJwtEncode({ iss: 'NotZoneMinder', iat: now, exp: now + 60, user: 'admin', type: 'access' }, SECRET);
    expect((await authErrorFrom(verify(t))).code).toBe('invalid_token');
  });

  it('requires user, iat, exp and type=access', async () => {
    const now = Math.floor(Date.now() / 1000);
    const base = { iss: 'ZoneMinder', iat: now, exp: now + 60, user: 'admin', type: 'access' };
    for (const drop of ['user', 'iat', 'exp', 'type'] as const) {
      const claims: Record<string, unknown> = { ...base };
      delete claims[drop];
      expect((await authErrorFrom(verify(phpJwtEncode(claims, SECRET)))).code, drop).toBe('invalid_token');
    }
    expect((await authErrorFrom(verify(phpJwtEncode({ ...base, type: 'id' }, SECRET)))).code).toBe('invalid_token');
    expect((await authErrorFrom(verify(phpJwtEncode({ ...base, user: 7 }, SECRET)))).code).toBe('invalid_token');
  });

  it('checks exp, nbf and iat with no leeway', async () => {
    const now = Date.now();
    const s = Math.floor(now / 1000);
    const expired = phpJwtEncode({ iss: 'ZoneMinder', iat: s - 100, exp: s, user: 'admin', type: 'access' }, SECRET);
    expect((await authErrorFrom(verify(expired, now))).code).toBe('token_expired');
    const early = phpJwtEncode({ iss: 'ZoneMinder', iat: s, nbf: s + 1, exp: s + 60, user: 'admin', type: 'access' }, SECRET);
    expect((await authErrorFrom(verify(early, now))).code).toBe('invalid_token');
    const future = phpJwtEncode({ iss: 'ZoneMinder', iat: s + 1, exp: s + 60, user: 'admin', type: 'access' }, SECRET);
    expect((await authErrorFrom(verify(future, now))).code).toBe('invalid_token');
    expect((await verify(future, now + 1000)).user).toBe('admin');
  });

  it('refuses garbage without throwing anything but an AuthError', async () => {
    for (const t of ['', 'a', 'a.b', 'a.b.c', '...', 'eyJhbGciOiJIUzI1NiJ9.e30.', 'x'.repeat(5000)]) {
      expect((await authErrorFrom(verify(t))).code).toMatch(/invalid_token|auth_unavailable/);
    }
  });

  it('mints tokens in the same shape, with the given issuer', async () => {
    const t = await mintAccessToken('viewer', SECRET, 600, 'zmcast');
    const [header, payload] = t.split('.').slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url').toString()));
    expect(header).toEqual({ alg: 'HS256', typ: 'JWT' });
    expect(Object.keys(payload)).toEqual(['iss', 'iat', 'exp', 'user', 'type']);
    expect(payload).toMatchObject({ iss: 'zmcast', user: 'viewer', type: 'access' });
    expect(payload.exp - payload.iat).toBe(600);
    expect((await authErrorFrom(verify(t))).code).toBe('invalid_token');
  });
});
