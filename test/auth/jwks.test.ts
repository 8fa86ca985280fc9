import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAuthenticator, type Authenticator } from '../../shared/auth/authenticator.js';
import { parseMonitorsClaim } from '../../shared/auth/jwks.js';
import type { Principal } from '../../shared/auth/types.js';
import type { AuthConfig } from '../../shared/config.js';
import { setLogLevel } from '../../shared/log.js';
import { authErrorFrom } from '../helpers/auth-error.js';
import { sleep } from '../helpers/wait.js';
import { authConfig, phpJwtEncode } from '../zoneminder/fixtures.js';

const ISSUER = 'https://idp.test/realms/cams';
const AUDIENCE = 'zmcast-edge';

interface Key {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

async function makeKey(kid: string, alg: 'RS256' | 'ES256' | 'EdDSA'): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

function sign(key: Key, claims: Record<string, unknown>, o: { ttl?: number; header?: Record<string, unknown> } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: ISSUER, aud: AUDIENCE, sub: 'user-1', iat: now, exp: now + (o.ttl ?? 300), ...claims })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, ...o.header })
    .sign(key.privateKey);
}

let server: Server;
let jwksUrl: string;
let published: JWK[] = [];
let fetches = 0;
let rsa: Key;
let ec: Key;
let ed: Key;
const open: Authenticator[] = [];

beforeAll(async () => {
  setLogLevel('error');
  [rsa, ec, ed] = await Promise.all([makeKey('rsa-1', 'RS256'), makeKey('ec-1', 'ES256'), makeKey('ed-1', 'EdDSA')]);
  server = createServer((_req, res) => {
    fetches++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: published }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  jwksUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}/certs`;
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((a) => a.close()));
});

afterAll(async () => {
  setLogLevel('info');
  await new Promise((r) => server.close(r));
});

async function start(over: Partial<AuthConfig> = {}): Promise<Authenticator> {
  const a = await createAuthenticator(authConfig({
    mode: 'jwks', jwksUrl, jwksIssuer: ISSUER, jwksAudience: AUDIENCE, jwksRefreshMs: 1000, failuresPerMinute: 0, ...over,
  }));
  open.push(a);
  return a;
}

function bearer(a: Authenticator, token: string): Promise<Principal> {
  const { presented, clientAddress } = a.fromRequest({ url: '/ws', headers: { authorization: `Bearer ${token}` }, socket: { remoteAddress: '192.0.2.1' } } as unknown as IncomingMessage);
  return a.authenticate(presented, clientAddress);
}

describe('jwks mode', () => {
  it('accepts RS256, ES256 and EdDSA tokens and grants the monitors in the claim', async () => {
    published = [rsa.jwk, ec.jwk, ed.jwk];
    const a = await start();
    for (const key of [rsa, ec, ed]) {
      const p = await bearer(a, await sign(key, { zmcast_monitors: [1, '2'] }));
      expect(p).toMatchObject({ user: 'user-1', method: 'token' });
      expect([1, 2, 3].map((m) => p.canView(m))).toEqual([true, true, false]);
    }
  });

  it('reads the user and monitors from configurable, possibly nested, claims', async () => {
    published = [rsa.jwk];
    const a = await start({ jwksUserClaim: 'preferred_username', jwksMonitorsClaim: 'resource_access.zmcast.monitors' });
    const p = await bearer(a, await sign(rsa, { preferred_username: 'gate-guard', resource_access: { zmcast: { monitors: '4 5' } } }));
    expect(p.user).toBe('gate-guard');
    expect([4, 5, 6].map((m) => p.canView(m))).toEqual([true, true, false]);
    expect((await authErrorFrom(bearer(a, await sign(rsa, { resource_access: {} })))).code).toBe('invalid_token');
  });

  it('parses the monitors claim strictly: ids or "*", nothing else grants anything', () => {
    expect(parseMonitorsClaim('*')).toBe('*');
    expect(parseMonitorsClaim(['1', '*'])).toBe('*');
    expect([...(parseMonitorsClaim('1, 2 3') as Set<number>)]).toEqual([1, 2, 3]);
    expect([...(parseMonitorsClaim([1.5, -1, 'x', '7', { id: 8 }]) as Set<number>)]).toEqual([7]);
    expect((parseMonitorsClaim(undefined) as Set<number>).size).toBe(0);
  });

  it('checks issuer, audience and expiry, and requires exp', async () => {
    published = [rsa.jwk];
    const a = await start();
    expect((await authErrorFrom(bearer(a, await sign(rsa, { iss: 'https://evil.test' })))).code).toBe('invalid_token');
    expect((await authErrorFrom(bearer(a, await sign(rsa, { aud: 'another-app' })))).code).toBe('invalid_token');
    expect((await authErrorFrom(bearer(a, await sign(rsa, {}, { ttl: -10 })))).code).toBe('token_expired');
    const noExp = await new SignJWT({ iss: ISSUER, aud: AUDIENCE, sub: 'u' }).setProtectedHeader({ alg: 'RS256', kid: rsa.kid }).sign(rsa.privateKey);
    expect((await authErrorFrom(bearer(a, noExp))).code).toBe('invalid_token');
  });

  it('refuses alg:none, HS256 keyed with the public key, and refresh tokens', async () => {
    published = [rsa.jwk];
    const a = await start();
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: ISSUER, aud: AUDIENCE, sub: 'x', iat: now, exp: now + 60 };
    expect((await authErrorFrom(bearer(a, phpJwtEncode(claims, '', { alg: 'none', kid: rsa.kid })))).code).toBe('invalid_token');
    const confused = phpJwtEncode(claims, await exportSPKI((await generateKeyPair('RS256', { extractable: true })).publicKey), { alg: 'HS256', kid: rsa.kid });
    expect((await authErrorFrom(bearer(a, confused))).code).toBe('invalid_token');
    expect((await authErrorFrom(bearer(a, await sign(rsa, { typ: 'Refresh' })))).code).toBe('refresh_token');
  });

  it('follows key rotation without a restart: new keys are fetched, removed keys stop working', async () => {
    published = [rsa.jwk];
    const a = await start();
    expect((await bearer(a, await sign(rsa, {}))).user).toBe('user-1');
    const next = await makeKey('rsa-2', 'RS256');
    published = [next.jwk];
    await sleep(1100); // past the re-fetch cooldown (auth.jwksRefreshMs)
    expect((await bearer(a, await sign(next, {}))).user).toBe('user-1');
    await sleep(1100); // past the cache lifetime
    expect((await authErrorFrom(bearer(a, await sign(rsa, {})))).code).toBe('invalid_token');
  });

  it('does not fetch the key set for every token', async () => {
    published = [rsa.jwk];
    const a = await start({ jwksRefreshMs: 60_000 });
    const before = fetches;
    for (let i = 0; i < 20; i++) await bearer(a, await sign(rsa, { sub: `u${i}` }));
    expect(fetches - before).toBe(1);
  });

  it('answers 503 when the key server is unreachable', async () => {
    const a = await start({ jwksUrl: 'http://127.0.0.1:1/certs' });
    const err = await authErrorFrom(bearer(a, await sign(rsa, {})));
    expect([err.code, err.status]).toEqual(['auth_unavailable', 503]);
  });

  it('takes only bearer tokens', async () => {
    const a = await start();
    const { presented } = a.fromRequest({ url: '/ws?user=a&pass=b', headers: {}, socket: { remoteAddress: '192.0.2.1' } } as unknown as IncomingMessage);
    expect((await authErrorFrom(a.authenticate(presented, '192.0.2.1'))).code).toBe('unsupported_credentials');
  });

  it('reads a JWKS file and picks up a rotated file without a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zmcast-jwks-'));
    const file = join(dir, 'jwks.json');
    try {
      writeFileSync(file, JSON.stringify({ keys: [ec.jwk] }));
      const a = await start({ jwksUrl: '', jwksFile: file });
      expect((await bearer(a, await sign(ec, { zmcast_monitors: '*' }))).canView(77)).toBe(true);
      writeFileSync(file, JSON.stringify({ keys: [ed.jwk, ec.jwk] }));
      await sleep(1100);
      expect((await bearer(a, await sign(ed, {}))).user).toBe('user-1');
      writeFileSync(file, '{ not json');
      await sleep(1100);
      expect((await bearer(a, await sign(ed, {}))).user).toBe('user-1'); // a broken file keeps the last good keys
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
