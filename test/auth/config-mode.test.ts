import { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingMessage } from 'node:http';
import { afterEach, beforeAll, afterAll, describe, expect, it, vi } from 'vitest';
import { createAuthenticator, type Authenticator } from '../../shared/auth/authenticator.js';
import { hashPassword, mintToken } from '../../shared/auth/config-users.js';
import { ConfigError, loadConfig, type AuthConfig, type AuthUserSpec } from '../../shared/config.js';
import { setLogLevel } from '../../shared/log.js';
import { authErrorFrom } from '../helpers/auth-error.js';
import { authConfig, phpJwtEncode, SECRET, TestClock, zmBcrypt, zmToken } from '../zoneminder/fixtures.js';

const ZMCAST_SECRET = 'zmcast-secret-zmcast-secret-zmcast-secret';
const users: AuthUserSpec[] = [
  { name: 'alice', password: zmBcrypt('alice-pw'), monitors: [1, 2], enabled: true, tokensNotBefore: 0 },
  { name: 'wall', password: zmBcrypt('wall-pw'), monitors: '*', enabled: true, tokensNotBefore: 0 },
  { name: 'kiosk', monitors: [3], enabled: true, tokensNotBefore: 0 },
  { name: 'left', password: zmBcrypt('left-pw'), monitors: '*', enabled: false, tokensNotBefore: 0 },
  { name: 'rotated', monitors: '*', enabled: true, tokensNotBefore: 2_000_000_000 },
];

const open: Authenticator[] = [];
beforeAll(() => setLogLevel('warn'));
afterAll(() => setLogLevel('info'));
afterEach(async () => { await Promise.all(open.splice(0).map((a) => a.close())); });

async function start(over: Partial<AuthConfig> = {}, clock?: TestClock): Promise<Authenticator> {
  const a = await createAuthenticator(authConfig({ mode: 'config', users, secret: ZMCAST_SECRET, failuresPerMinute: 0, ...over }), { now: clock?.now });
  open.push(a);
  return a;
}

function login(a: Authenticator, url: string): Promise<import('../../shared/auth/types.js').Principal> {
  const { presented, clientAddress } = a.fromRequest({ url, headers: {}, socket: { remoteAddress: '192.0.2.1' } } as unknown as IncomingMessage);
  return a.authenticate(presented, clientAddress);
}

describe('config mode', () => {
  it('logs a configured user in with a password and grants exactly the listed monitors', async () => {
    const a = await start();
    const p = await login(a, '/ws?user=alice&pass=alice-pw');
    expect(p).toMatchObject({ user: 'alice', method: 'password', expiresAt: null });
    expect([1, 2, 3].map((m) => p.canView(m))).toEqual([true, true, false]);
    expect((await login(a, '/ws?user=wall&pass=wall-pw')).canView(999)).toBe(true);
  });

  it('checks passwords without an AsyncLocalStorage, which would turn on promise hooks for the whole edge for good', async () => {
    const run = vi.spyOn(AsyncLocalStorage.prototype, 'run');
    const enterWith = vi.spyOn(AsyncLocalStorage.prototype, 'enterWith');
    try {
      const a = await start();
      await login(a, '/ws?user=alice&pass=alice-pw');
      expect((await authErrorFrom(login(a, '/ws?user=alice&pass=wrong'))).code).toBe('invalid_credentials');
      expect(run).not.toHaveBeenCalled();
      expect(enterWith).not.toHaveBeenCalled();
    } finally {
      run.mockRestore();
      enterWith.mockRestore();
    }
  });

  it('accepts tokens from mintToken (what `zmcast token` prints) until they expire', async () => {
    const clock = new TestClock();
    const a = await start({}, clock);
    const t = await mintToken('kiosk', ZMCAST_SECRET, 600, clock.t);
    const p = await login(a, `/ws?token=${t}`);
    expect(p).toMatchObject({ user: 'kiosk', method: 'token', expiresAt: (Math.floor(clock.t / 1000) + 600) * 1000 });
    expect(p.canView(3)).toBe(true);
    clock.advance(600_000);
    expect((await authErrorFrom(p.revalidate())).code).toBe('token_expired');
  });

  it('refuses ZoneMinder tokens, refresh tokens, tokens of unknown users, and tokens issued before tokensNotBefore', async () => {
    const a = await start();
    expect((await authErrorFrom(login(a, `/ws?token=${zmToken(SECRET, 'alice')}`))).code).toBe('invalid_token');
    expect((await authErrorFrom(login(a, `/ws?token=${zmToken(ZMCAST_SECRET, 'alice')}`))).code).toBe('invalid_token');
    expect((await authErrorFrom(login(a, `/ws?token=${await mintToken('mallory', ZMCAST_SECRET, 60)}`))).code).toBe('revoked');
    expect((await authErrorFrom(login(a, `/ws?token=${await mintToken('rotated', ZMCAST_SECRET, 60)}`))).code).toBe('revoked');
    const now = Math.floor(Date.now() / 1000);
    const refresh = phpJwtEncode({ iss: 'zmcast', iat: now, exp: now + 60, user: 'alice', type: 'refresh' }, ZMCAST_SECRET);
    expect((await authErrorFrom(login(a, `/ws?token=${refresh}`))).code).toBe('refresh_token');
  });

  it('refuses disabled users (403), wrong passwords (401), token-only users\' passwords, and auth= hashes', async () => {
    const a = await start();
    expect((await authErrorFrom(login(a, '/ws?user=left&pass=left-pw'))).status).toBe(403);
    expect((await authErrorFrom(login(a, '/ws?user=alice&pass=nope'))).code).toBe('invalid_credentials');
    expect((await authErrorFrom(login(a, '/ws?user=kiosk&pass=anything'))).code).toBe('invalid_credentials');
    expect((await authErrorFrom(login(a, '/ws?auth=0123456789abcdef0123456789abcdef&user=alice'))).code).toBe('unsupported_credentials');
    expect((await authErrorFrom(login(a, '/ws'))).code).toBe('credentials_required');
  });

  it('refuses all tokens when no secret is configured, like any bad token, and says why in its status', async () => {
    const a = await start({ secret: '' });
    expect(a.status().warnings.join('\n')).toMatch(/auth.secret is empty/);
    const err = await authErrorFrom(login(a, `/ws?token=${await mintToken('kiosk', ZMCAST_SECRET, 60)}`));
    expect([err.code, err.publicReason, err.detail]).toEqual(['invalid_token', 'Invalid token', 'auth.secret is empty: tokens are refused']);
  });

  it('refuses everyone by default: mode config with no users', async () => {
    const config = loadConfig({ env: {} });
    expect(config.auth.mode).toBe('config');
    const a = await createAuthenticator(config.auth);
    open.push(a);
    expect(a.status().warnings.join('\n')).toMatch(/every connection is refused/);
    expect((await authErrorFrom(login(a, '/ws?user=admin&pass=admin'))).code).toBe('invalid_credentials');
  });

  it('hashes passwords for the config file with bcrypt', async () => {
    const h = await hashPassword('new-pw', 4);
    expect(h).toMatch(/^\$2b\$04\$/);
    const a = await start({ users: [{ name: 'n', password: h, monitors: [1], enabled: true, tokensNotBefore: 0 }] });
    expect((await login(a, '/ws?user=n&pass=new-pw')).user).toBe('n');
  });
});

describe('auth config', () => {
  it('reads users from ZMCAST_AUTH_USERS as JSON', () => {
    const c = loadConfig({ env: { ZMCAST_AUTH_USERS: JSON.stringify([{ name: 'a', password: zmBcrypt('x'), monitors: [1] }]) } });
    expect(c.auth.users).toEqual([{ name: 'a', password: expect.stringMatching(/^\$2y\$/), monitors: [1], enabled: true, tokensNotBefore: 0 }]);
  });

  it('refuses a plain password in the config and never repeats it in the error', () => {
    let msg = '';
    try {
      loadConfig({ env: { ZMCAST_AUTH_USERS: JSON.stringify([{ name: 'a', password: 'hunter2-plain', monitors: '*' }]) } });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      msg = (err as Error).message;
    }
    expect(msg).toMatch(/auth.users.*bcrypt hash/);
    expect(msg).not.toContain('hunter2-plain');
  });

  it('refuses a short secret without showing it', () => {
    expect(() => loadConfig({ env: { ZMCAST_AUTH_SECRET: 'short-secret-xyz' } })).toThrow(/auth.secret.*at least 32/);
    try {
      loadConfig({ env: { ZMCAST_AUTH_SECRET: 'short-secret-xyz' } });
    } catch (err) {
      expect((err as Error).message).not.toContain('short-secret-xyz');
    }
  });

  it('checks the other auth keys by name', () => {
    expect(() => loadConfig({ env: { ZMCAST_AUTH_MODE: 'open' } })).toThrow(/auth.mode/);
    expect(() => loadConfig({ env: { ZMCAST_AUTH_TRUSTED_PROXIES: '10.0.0.0/8,bogus' } })).toThrow(/auth.trustedProxies/);
    expect(() => loadConfig({ env: { ZMCAST_AUTH_ZM_TIME_ZONE: 'Mars/Olympus' } })).toThrow(/auth.zmTimeZone/);
    expect(() => loadConfig({ env: { ZMCAST_AUTH_JWKS_ALGORITHMS: 'RS256,HS256' } })).toThrow(/auth.jwksAlgorithms.*HS256/);
    expect(() => loadConfig({ env: { ZMCAST_AUTH_MODE: 'jwks', ZMCAST_AUTH_JWKS_URL: 'http://idp.example/jwks', ZMCAST_AUTH_JWKS_ISSUER: 'i', ZMCAST_AUTH_JWKS_AUDIENCE: 'a' } })).toThrow(/https/);
    expect(() => loadConfig({ env: { ZMCAST_AUTH_MODE: 'jwks', ZMCAST_AUTH_JWKS_URL: 'https://idp.example/jwks', ZMCAST_AUTH_JWKS_AUDIENCE: 'a' } })).toThrow(/jwksIssuer/);
    expect(() => loadConfig({ env: { ZMCAST_AUTH_MODE: 'jwks', ZMCAST_AUTH_JWKS_ISSUER: 'i', ZMCAST_AUTH_JWKS_AUDIENCE: 'a' } })).toThrow(/exactly one/);
    const ok = loadConfig({ env: { ZMCAST_AUTH_MODE: 'none', ZMCAST_AUTH_TRUSTED_PROXIES: '10.0.0.0/8, ::1', ZMCAST_AUTH_TRUST_RELAY_NONE: 'yes' } });
    expect(ok.auth).toMatchObject({ mode: 'none', trustedProxies: ['10.0.0.0/8', '::1'], trustRelayNone: true });
  });
});

describe('mode none', () => {
  it('lets anyone watch anything, only when asked for, and says so loudly', async () => {
    const a = await createAuthenticator(authConfig({ mode: 'none' }));
    open.push(a);
    expect(a.status()).toEqual({ mode: 'none', warnings: [expect.stringMatching(/anyone who reaches the edge/)] });
    const p = await login(a, '/ws');
    expect(p).toMatchObject({ user: '', method: 'anonymous', expiresAt: null });
    expect(p.canView(42)).toBe(true);
    await p.revalidate();
  });
});
