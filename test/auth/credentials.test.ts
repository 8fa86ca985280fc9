import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import {
  chooseSubprotocol, clientAddress, extractCredentials, isAuthMessage, isEmpty, parseAuthMessage, TrustedProxies,
} from '../../shared/auth/credentials.js';
import { AuthError } from '../../shared/auth/errors.js';

const JWT = 'eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJ1c2VyIjoiYWRtaW4ifQ.c2ln';
const HASH = '0123456789abcdef0123456789abcdef';

function req(url: string, headers: Record<string, string | string[]> = {}, remoteAddress = '203.0.113.9'): IncomingMessage {
  return { url, headers, socket: { remoteAddress } } as unknown as IncomingMessage;
}

function refused(fn: () => unknown): AuthError {
  try {
    fn();
  } catch (err) {
    if (err instanceof AuthError) return err;
    throw err;
  }
  throw new Error('expected an AuthError');
}

describe('credentials at the handshake', () => {
  it('takes ?token= (zms) and ?jwt_token= (the RTSP server), preferring jwt_token as the RTSP server does', () => {
    expect(extractCredentials(req(`/ws?token=${JWT}`))).toMatchObject({ token: JWT, tokenSource: 'token', via: 'handshake' });
    expect(extractCredentials(req(`/ws?jwt_token=${JWT}&token=other.tok.en`))).toMatchObject({ token: JWT, tokenSource: 'jwt_token' });
  });

  it('takes Authorization: Bearer first, as ZoneMinder\'s WebSocket draft does', () => {
    const p = extractCredentials(req('/ws?token=other.tok.en', { authorization: `Bearer ${JWT}` }));
    expect(p).toMatchObject({ token: JWT, tokenSource: 'authorization' });
  });

  it('takes a token from a zmcast.token.<jwt> Sec-WebSocket-Protocol entry, for browsers', () => {
    const p = extractCredentials(req('/ws', { 'sec-websocket-protocol': `zmcast, zmcast.token.${JWT}` }));
    expect(p).toMatchObject({ token: JWT, tokenSource: 'subprotocol' });
  });

  it('echoes the plain zmcast subprotocol rather than the one carrying the token', () => {
    expect(chooseSubprotocol(new Set(['zmcast', `zmcast.token.${JWT}`]))).toBe('zmcast');
    expect(chooseSubprotocol(new Set([`zmcast.token.${JWT}`]))).toBe(`zmcast.token.${JWT}`);
    expect(chooseSubprotocol(new Set(['other']))).toBe('other');
    expect(chooseSubprotocol(new Set())).toBe(false);
  });

  it('takes ?auth=&user= and the username= spelling of ZoneMinder\'s draft', () => {
    expect(extractCredentials(req(`/ws?auth=${HASH}&user=admin`))).toMatchObject({ authHash: HASH, user: 'admin' });
    expect(extractCredentials(req(`/ws?auth=${HASH}&username=admin`))).toMatchObject({ authHash: HASH, user: 'admin' });
  });

  it('takes ?user=&pass= and ?username=&password=, URI-decoded as zms decodes them', () => {
    expect(extractCredentials(req('/ws?user=ad%20min&pass=p%26ss'))).toMatchObject({ user: 'ad min', password: 'p&ss' });
    expect(extractCredentials(req('/ws?username=admin&password=pw'))).toMatchObject({ user: 'admin', password: 'pw' });
  });

  it('reports nothing presented, so the edge can wait for an in-band auth message', () => {
    const p = extractCredentials(req('/ws?monitor=1'));
    expect(isEmpty(p)).toBe(true);
  });

  it('refuses a credential parameter given twice, which proxies and zms would read differently', () => {
    expect(refused(() => extractCredentials(req(`/ws?token=${JWT}&token=${JWT}x`))).code).toBe('bad_credentials');
    expect(refused(() => extractCredentials(req('/ws?user=a&user=b&pass=x'))).status).toBe(400);
    expect(refused(() => extractCredentials(req('/ws?user=a&username=b&pass=x'))).code).toBe('bad_credentials');
  });

  it('refuses more than one token in Sec-WebSocket-Protocol', () => {
    expect(refused(() => extractCredentials(req('/ws', { 'sec-websocket-protocol': 'zmcast.token.a.b.c, zmcast.token.d.e.f' }))).code).toBe('bad_credentials');
  });

  it('refuses oversized values before any work is done', () => {
    expect(refused(() => extractCredentials(req(`/ws?token=${'a'.repeat(9000)}`))).code).toBe('bad_credentials');
    expect(refused(() => extractCredentials(req(`/ws?user=${'u'.repeat(65)}&pass=x`))).code).toBe('bad_credentials');
    expect(refused(() => extractCredentials(req(`/ws?user=u&pass=${'p'.repeat(257)}`))).code).toBe('bad_credentials');
  });

  it('refuses control characters in a user name', () => {
    expect(refused(() => extractCredentials(req('/ws?user=ad%0Amin&pass=x'))).code).toBe('bad_credentials');
  });

  it('treats a token with characters outside base64url as an invalid token', () => {
    expect(refused(() => extractCredentials(req('/ws?token=abc%27%20OR%201%3D1'))).code).toBe('invalid_token');
  });

  it('treats an auth hash that is not 32 lowercase hex digits as wrong credentials (zms strcmp)', () => {
    expect(refused(() => extractCredentials(req(`/ws?auth=${HASH.toUpperCase()}&user=a`))).code).toBe('invalid_credentials');
    expect(refused(() => extractCredentials(req('/ws?auth=abc&user=a'))).code).toBe('invalid_credentials');
  });

  it('refuses a password in the URL when auth.queryPasswords is off', () => {
    const err = refused(() => extractCredentials(req('/ws?user=a&pass=b'), undefined, { queryPasswords: false }));
    expect(err.code).toBe('bad_credentials');
  });

  it('refuses a malformed Bearer header and ignores other schemes', () => {
    expect(refused(() => extractCredentials(req('/ws', { authorization: 'Bearer' }))).code).toBe('bad_credentials');
    expect(isEmpty(extractCredentials(req('/ws', { authorization: 'Basic YTpi' })))).toBe(true);
  });
});

describe('in-band auth message', () => {
  it('accepts a token, user+pass (either spelling) or auth+user', () => {
    expect(parseAuthMessage({ command: 'auth', token: JWT })).toMatchObject({ token: JWT, tokenSource: 'message', via: 'message' });
    expect(parseAuthMessage({ command: 'auth', user: 'a', pass: 'b' })).toMatchObject({ user: 'a', password: 'b' });
    expect(parseAuthMessage({ command: 'auth', username: 'a', password: 'b' })).toMatchObject({ user: 'a', password: 'b' });
    expect(parseAuthMessage({ command: 'auth', auth: HASH, user: 'a', request_id: 7 })).toMatchObject({ authHash: HASH, user: 'a' });
  });

  it('refuses wrong types instead of coercing them', () => {
    expect(refused(() => parseAuthMessage({ command: 'auth', token: 42 })).code).toBe('bad_credentials');
    expect(refused(() => parseAuthMessage({ command: 'auth', user: ['a'], pass: 'b' })).code).toBe('bad_credentials');
    expect(refused(() => parseAuthMessage({ command: 'auth', user: { $ne: null }, pass: 'b' })).code).toBe('bad_credentials');
  });

  it('refuses an auth message with nothing in it, and anything that is not one', () => {
    expect(refused(() => parseAuthMessage({ command: 'auth' })).code).toBe('credentials_required');
    expect(refused(() => parseAuthMessage({ command: 'subscribe' })).code).toBe('bad_credentials');
    expect(refused(() => parseAuthMessage(null)).code).toBe('bad_credentials');
    expect(isAuthMessage({ command: 'auth' })).toBe(true);
    expect(isAuthMessage('auth')).toBe(false);
  });
});

describe('client address', () => {
  const proxies = new TrustedProxies(['10.0.0.0/8', '::1']);

  it('ignores X-Forwarded-For from a peer that is not a trusted proxy', () => {
    expect(clientAddress(req('/ws', { 'x-forwarded-for': '1.2.3.4' }, '203.0.113.9'), proxies)).toBe('203.0.113.9');
    expect(clientAddress(req('/ws', { 'x-forwarded-for': '1.2.3.4' }, '10.1.1.1'), new TrustedProxies([]))).toBe('10.1.1.1');
  });

  it('takes the right-most untrusted hop when the peer is a trusted proxy', () => {
    const r = req('/ws', { 'x-forwarded-for': '6.6.6.6, 198.51.100.7, 10.2.2.2' }, '10.1.1.1');
    expect(clientAddress(r, proxies)).toBe('198.51.100.7');
  });

  it('normalises IPv4-mapped IPv6 peers and strips ports proxies sometimes append', () => {
    expect(clientAddress(req('/ws', {}, '::ffff:192.0.2.1'), proxies)).toBe('192.0.2.1');
    expect(clientAddress(req('/ws', { 'x-forwarded-for': '198.51.100.7:5555' }, '::ffff:10.0.0.5'), proxies)).toBe('198.51.100.7');
    expect(clientAddress(req('/ws', { 'x-forwarded-for': '[2001:db8::1]:443' }, '::1'), proxies)).toBe('2001:db8::1');
  });

  it('stops at garbage in the header rather than believing it', () => {
    expect(clientAddress(req('/ws', { 'x-forwarded-for': 'not-an-ip, 10.3.3.3' }, '10.1.1.1'), proxies)).toBe('10.3.3.3');
  });

  it('refuses a trusted-proxy entry that is not an address or range', () => {
    expect(() => new TrustedProxies(['10.0.0.0/33'])).toThrow(/prefix/);
    expect(() => new TrustedProxies(['proxy.local'])).toThrow(/not an IP/);
  });
});
