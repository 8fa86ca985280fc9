/**
 * Who may watch what, end to end on a running edge: every credential path at
 * the upgrade and in-band (ZoneMinder mode over a real ZoneMinder database,
 * and config mode), refusals with their HTTP status and no upgrade,
 * per-monitor permission, revocation and expiry on open connections, the
 * Origin allowlist, connection caps, and native TLS with certificate reload.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../shared/auth/index.js';
import { setLogLevel } from '../../shared/log.js';
import { createZmTestDatabase, writeZmConf, type TestDatabase } from '../helpers/mariadb.js';
import { PacketSource, startEdge, type EdgeRig } from '../helpers/edge.js';
import { sleep } from '../helpers/wait.js';
import { phpJwtEncode, SECRET, zmAuthHashAt, zmBcrypt, ZmFixture, zmToken } from '../zoneminder/fixtures.js';
import { dropped, isError, isType, open, q, rawExchange, refused, type Conn, upgradeRefusal } from './rig.js';

const REVALIDATE_MS = 1000;
const IN_BAND_MS = 1500;
const WARNING_MS = 1500;

const conns: Conn[] = [];
async function connect(base: string, path: string, o: Parameters<typeof open>[2] = {}): Promise<Conn> {
  const c = await open(base, path, o);
  conns.push(c);
  return c;
}

/** A short-lived ZoneMinder access token: HostController's claims, a chosen lifetime. */
function shortZmToken(user: string, ttlSec: number): string {
  const iat = Math.floor(Date.now() / 1000);
  return phpJwtEncode({ iss: 'ZoneMinder', iat, exp: iat + ttlSec, user, type: 'access' }, SECRET);
}

/** Status of monitor 1 works and monitor 2 is `forbidden`: what every viewer login below is allowed. */
async function expectViewerRights(c: Conn): Promise<void> {
  c.send({ command: 'status', monitor_id: 1, request_id: 'm1' });
  c.send({ command: 'status', monitor_id: 2, request_id: 'm2' });
  expect(await c.waitFor((m) => m.request_id === 'm1')).toMatchObject({ type: 'status', monitor_id: 1 });
  expect(await c.waitFor((m) => m.request_id === 'm2')).toMatchObject({ type: 'error', code: 'forbidden', monitor_id: 2 });
}

beforeAll(() => setLogLevel('error'));
afterAll(async () => {
  for (const c of conns.splice(0)) c.ws.terminate();
  setLogLevel('warn');
});

describe('zoneminder mode', () => {
  let db: TestDatabase;
  let zm: ZmFixture;
  let rig: EdgeRig;
  let cam: PacketSource;
  const stored: Record<string, string> = {};
  const ids: Record<string, number> = {};

  /** Monitor 1 granted, monitor 2 not (Monitors = None, a Monitors_Permissions row for 1). */
  async function addViewer(name: string, extra: { enabled?: 0 | 1; tokenMinExpiry?: number } = {}): Promise<void> {
    stored[name] = zmBcrypt(`${name}-pw`);
    ids[name] = await zm.addUser({ username: name, password: stored[name], monitors: 'None', ...extra });
    await zm.grantMonitor(ids[name], 1, 'View');
  }

  beforeAll(async () => {
    db = await createZmTestDatabase();
    zm = new ZmFixture(db);
    await zm.standardOptions();
    await zm.addMonitor({ id: 1, name: 'Door' });
    await zm.addMonitor({ id: 2, name: 'Yard' });
    for (const name of ['viewer', 'revtoken', 'revdisable', 'revperm', 'revpermws', 'expiring']) await addViewer(name);
    await addViewer('disabled', { enabled: 0 });
    await addViewer('revokedbefore', { tokenMinExpiry: Math.floor(Date.now() / 1000) + 3600 });
    ids.nostream = await zm.addUser({ username: 'nostream', plain: 'nostream-pw', stream: 'None', monitors: 'View' });
    rig = await startEdge({
      auth: {
        mode: 'zoneminder', zmConf: writeZmConf(db), failuresPerMinute: 0,
        revalidateMs: REVALIDATE_MS, inBandTimeoutMs: IN_BAND_MS, expiryWarningMs: WARNING_MS,
      },
    });
    cam = new PacketSource(rig.redis, 1, { gop: 5, size: 200 });
    await cam.register();
    await new PacketSource(rig.redis, 2, { gop: 5, size: 200 }).register();
    await cam.publish(5);
  });

  afterAll(async () => {
    await cam?.stop();
    await rig?.close();
    await db?.drop();
  });

  it('accepts every credential path at the upgrade: token, jwt_token, Bearer, subprotocol, auth hash, user+pass, username+password', async () => {
    const token = zmToken(SECRET, 'viewer');
    const hash = zmAuthHashAt(SECRET, 'viewer', stored.viewer, '', new Date());
    const paths: [string, string, Parameters<typeof open>[2]][] = [
      ['?token=', `/ws?token=${token}`, {}],
      ['?jwt_token=', `/ws?jwt_token=${token}`, {}],
      ['Authorization: Bearer', '/ws', { headers: { Authorization: `Bearer ${token}` } }],
      ['Sec-WebSocket-Protocol', '/ws', { protocols: ['zmcast', `zmcast.token.${token}`] }],
      ['?auth=&user=', `/ws?auth=${hash}&user=viewer`, {}],
      ['?user=&pass=', '/ws?user=viewer&pass=viewer-pw', {}],
      ['?username=&password=', '/ws?username=viewer&password=viewer-pw', {}],
    ];
    for (const [label, path, o] of paths) {
      const c = await connect(rig.url, path, o);
      expect(await c.waitFor(isType('hello')), label).toMatchObject({ protocol: 1, server: 'zmcast' });
      await expectViewerRights(c);
      if (label === 'Sec-WebSocket-Protocol') expect(c.protocol).toBe('zmcast');
      c.ws.close();
    }
  });

  it('accepts in-band auth (token, password, auth hash) within the timeout, on /ws and /monitors/:id/ws', async () => {
    const hash = zmAuthHashAt(SECRET, 'viewer', stored.viewer, '', new Date());
    const token = zmToken(SECRET, 'viewer');
    for (const msg of [{ token }, { jwt_token: token }, { user: 'viewer', pass: 'viewer-pw' }, { username: 'viewer', password: 'viewer-pw' }, { auth: hash, user: 'viewer' }]) {
      const c = await connect(rig.url, '/ws');
      await c.waitFor(isType('hello'));
      c.send({ command: 'auth', request_id: 'a1', ...msg });
      const reply = await c.waitFor(isType('auth'));
      expect(reply).toMatchObject({ type: 'auth', user: 'viewer', request_id: 'a1' });
      if ('token' in msg || 'jwt_token' in msg) expect(reply.expires_at).toBeGreaterThan(Date.now());
      await expectViewerRights(c);
      c.ws.close();
    }
    const zmClient = await connect(rig.url, '/monitors/1/ws');
    zmClient.send({ command: 'auth', token });
    await zmClient.waitFor(isType('auth'));
    zmClient.send({ command: 'status' });
    expect(await zmClient.waitFor(isType('status'))).toMatchObject({ monitor_id: 1, monitor_name: 'Test 1' });
  });

  it('closes an in-band connection that sends nothing, wrong credentials, or a user not allowed on its monitor', async () => {
    const silent = await connect(rig.url, '/ws');
    const t0 = Date.now();
    const wrong = await connect(rig.url, '/ws');
    wrong.send({ command: 'auth', user: 'viewer', pass: 'nope' });
    const noRight = await connect(rig.url, '/monitors/1/ws');
    noRight.send({ command: 'auth', user: 'nostream', pass: 'nostream-pw' });
    expect(await wrong.closed).toMatchObject({ code: 4401, reason: 'Invalid username or password' });
    expect(await noRight.closed).toMatchObject({ code: 4403, reason: 'Forbidden' });
    const s = await silent.closed;
    expect(s).toMatchObject({ code: 4401, reason: 'Authentication required' });
    expect(s.at - t0).toBeGreaterThanOrEqual(IN_BAND_MS - 100);
    expect(s.at - t0).toBeLessThan(IN_BAND_MS + 1000);
  });

  it('answers commands sent before the in-band auth with `unauthenticated`, and takes the auth after them', async () => {
    const c = await connect(rig.url, '/ws');
    c.send({ command: 'status', monitor_id: 1, request_id: 'early' });
    expect(await c.waitFor(isError('unauthenticated'))).toMatchObject({ request_id: 'early' });
    c.send({ command: 'auth', user: 'viewer', pass: 'viewer-pw' });
    await c.waitFor(isType('auth'));
    await expectViewerRights(c);
  });

  it('refuses bad credentials with the documented HTTP status and no upgrade, counting each reason', async () => {
    const expired = phpJwtEncode({ iss: 'ZoneMinder', iat: Math.floor(Date.now() / 1000) - 7200, exp: Math.floor(Date.now() / 1000) - 60, user: 'viewer', type: 'access' }, SECRET);
    const cases: [string, Parameters<typeof open>[2], number, string, string][] = [
      ['/ws?user=viewer&pass=wrong', {}, 401, 'Invalid username or password', 'auth_invalid_credentials'],
      ['/ws?user=nobody&pass=viewer-pw', {}, 401, 'Invalid username or password', 'auth_invalid_credentials'],
      [`/ws?token=${zmToken('another-secret-another-secret-12', 'viewer')}`, {}, 401, 'Invalid token', 'auth_invalid_token'],
      [`/ws?token=${zmToken(SECRET, 'viewer', { type: 'refresh' })}`, {}, 401, 'Only access tokens are allowed; exchange the refresh token for an access token first', 'auth_refresh_token'],
      [`/ws?token=${expired}`, {}, 401, 'Token expired', 'auth_token_expired'],
      [`/ws?token=${zmToken(SECRET, 'revokedbefore')}`, {}, 401, 'Credentials revoked; sign in again', 'auth_revoked'],
      ['/ws?user=disabled&pass=disabled-pw', {}, 403, 'User is disabled', 'auth_user_disabled'],
      [`/ws?auth=${'0'.repeat(32)}&user=viewer`, {}, 401, 'Invalid username or password', 'auth_invalid_credentials'],
      ['/ws?token=a.b.c&token=a.b.c', {}, 400, 'Parameter token is given more than once', 'auth_bad_credentials'],
      ['/ws?user=viewer', {}, 401, 'A password, auth hash or token is required', 'auth_unsupported_credentials'],
      ['/ws', { headers: { Authorization: 'Bearer' } }, 400, 'Malformed Authorization header', 'auth_bad_credentials'],
    ];
    for (const [path, o, status, body, reason] of cases) {
      const before = await refused(reason);
      expect(await upgradeRefusal(rig.url, path, o), path).toEqual({ status, body: `${body}\n` });
      expect(await refused(reason), reason).toBe(before + 1);
    }
  });

  it('hides monitors a user may not watch: 404 on /monitors/:id/ws, `forbidden` per command on /ws', async () => {
    const token = zmToken(SECRET, 'viewer');
    for (const path of [`/monitors/2/ws?token=${token}`, `/monitors/99/ws?token=${token}`, '/monitors/1/ws?user=nostream&pass=nostream-pw']) {
      expect(await upgradeRefusal(rig.url, path), path).toEqual({ status: 404, body: 'Unknown monitor\n' });
    }
    const ok = await connect(rig.url, `/monitors/1/ws?token=${token}`);
    ok.send({ command: 'status' });
    await ok.waitFor(isType('status'));
    const c = await connect(rig.url, `/ws?token=${token}`);
    for (const [i, cmd] of [
      { command: 'subscribe', topic: 'stream', codec: 'auto', monitor_id: 2 },
      { command: 'subscribe', topic: 'events', monitor_id: 2 },
      { command: 'stream', codec: 'auto', monitor_id: 2 },
      { command: 'image', monitor_id: 2 },
    ].entries()) {
      c.send({ ...cmd, request_id: i });
      expect(await c.waitFor((m) => m.request_id === i)).toMatchObject({ type: 'error', code: 'forbidden', message: 'Not permitted to view monitor 2' });
    }
    const none = await connect(rig.url, '/ws?user=nostream&pass=nostream-pw');
    none.send({ command: 'status', monitor_id: 1 });
    expect(await none.waitFor(isType('error'))).toMatchObject({ code: 'forbidden', monitor_id: 1 });
  });

  it('takes revocation to open connections within auth.revalidateMs: TokenMinExpiry bumped, user disabled, permission removed', async () => {
    const tok = await connect(rig.url, `/ws?token=${zmToken(SECRET, 'revtoken')}`);
    const dis = await connect(rig.url, '/ws?user=revdisable&pass=revdisable-pw');
    const perm = await connect(rig.url, `/ws?token=${zmToken(SECRET, 'revperm')}`);
    const permWs = await connect(rig.url, `/monitors/1/ws?token=${zmToken(SECRET, 'revpermws')}`);
    for (const c of [tok, dis, perm]) {
      c.send({ command: 'subscribe', topic: 'stream', codec: 'auto', monitor_id: 1 });
      await c.waitFor(isType('ack'));
    }
    permWs.send({ command: 'subscribe', topic: 'stream', codec: 'h264' });
    await permWs.waitFor(isType('ack'));
    await sleep(1100); // TokenMinExpiry is in seconds: a bump must be past the tokens' iat
    const t0 = Date.now();
    await Promise.all([
      zm.setUser(ids.revtoken, 'TokenMinExpiry', Math.floor(t0 / 1000)),
      zm.setUser(ids.revdisable, 'Enabled', 0),
      zm.grantMonitor(ids.revperm, 1, 'None'),
      zm.grantMonitor(ids.revpermws, 1, 'None'),
    ]);
    const [a, b, d] = await Promise.all([tok.closed, dis.closed, permWs.closed]);
    expect(a).toMatchObject({ code: 4403, reason: 'Credentials revoked; sign in again' });
    expect(b).toMatchObject({ code: 4403, reason: 'User is disabled' });
    expect(d).toMatchObject({ code: 4403, reason: 'Forbidden' });
    const err = await perm.waitFor(isError('forbidden'), REVALIDATE_MS + 2000, 'subscription dropped');
    const permAt = Date.now();
    expect(err).toMatchObject({ monitor_id: 1, message: 'Not permitted to view monitor 1' });
    const delays = [a.at - t0, b.at - t0, d.at - t0, permAt - t0];
    for (const ms of delays) expect(ms).toBeLessThan(REVALIDATE_MS + 500);
    console.info(`revocation delays (ms; bound ${REVALIDATE_MS}): token ${delays[0]}, disabled ${delays[1]}, /monitors/:id/ws ${delays[2]}, subscription ${delays[3]}`);
    // The dropped subscription gets no more video, and the connection stays usable.
    const seen = perm.binary.length;
    await cam.publish(5);
    await sleep(300);
    expect(perm.binary.length).toBe(seen);
    perm.send({ command: 'ping', request_id: 'still' });
    await perm.waitFor((m) => m.request_id === 'still');
  });

  it('warns with auth_expiring, closes with 4401 at expiry, and keeps a connection that refreshes its token in-band', async () => {
    const ttl = 3;
    const lapsing = await connect(rig.url, `/ws?token=${shortZmToken('expiring', ttl)}`);
    const refreshing = await connect(rig.url, `/ws?token=${shortZmToken('expiring', ttl)}`);
    const warning = await lapsing.waitFor(isType('auth_expiring'), ttl * 1000);
    const warnedAt = Date.now();
    const expiresAt = warning.expires_at as number;
    expect(expiresAt - warnedAt).toBeGreaterThan(WARNING_MS - 300);
    expect(expiresAt - warnedAt).toBeLessThanOrEqual(WARNING_MS + 100);

    await refreshing.waitFor(isType('auth_expiring'));
    refreshing.send({ command: 'auth', token: 'eyJhbGciOiJub25lIn0.eyJ1c2VyIjoiZXhwaXJpbmcifQ.', request_id: 'bad' });
    expect(await refreshing.waitFor(isError('auth_failed'))).toMatchObject({ request_id: 'bad', message: 'Invalid token' });
    refreshing.send({ command: 'auth', token: zmToken(SECRET, 'expiring'), request_id: 'good' });
    const renewed = await refreshing.waitFor((m) => m.type === 'auth' && m.request_id === 'good');
    expect(renewed.expires_at).toBeGreaterThan(Date.now() + 3_000_000);

    const closed = await lapsing.closed;
    expect(closed).toMatchObject({ code: 4401, reason: 'Credentials expired' });
    expect(Math.abs(closed.at - expiresAt)).toBeLessThan(500);
    await sleep(500);
    refreshing.send({ command: 'status', monitor_id: 1, request_id: 'after' });
    expect(await refreshing.waitFor((m) => m.request_id === 'after')).toMatchObject({ type: 'status' });
    console.info(`expiry: warned ${expiresAt - warnedAt} ms before, closed ${closed.at - expiresAt} ms after exp`);
  });

  it('refuses a refresh that would switch the connection to another user', async () => {
    const c = await connect(rig.url, `/ws?token=${zmToken(SECRET, 'viewer')}`);
    c.send({ command: 'auth', user: 'nostream', pass: 'nostream-pw', request_id: 'switch' });
    expect(await c.waitFor(isError('auth_failed'))).toMatchObject({ request_id: 'switch' });
    await expectViewerRights(c);
  });
});

describe('config mode', () => {
  const secret = 'config-mode-secret-config-mode-secret';
  let rig: EdgeRig;

  beforeAll(async () => {
    rig = await startEdge({
      auth: {
        mode: 'config', secret, failuresPerMinute: 0, inBandTimeoutMs: IN_BAND_MS,
        users: [
          { name: 'carol', password: zmBcrypt('carol-pw'), monitors: [1], enabled: true, tokensNotBefore: 0 },
          { name: 'dave', password: zmBcrypt('dave-pw'), monitors: '*', enabled: false, tokensNotBefore: 0 },
        ],
      },
    });
    await new PacketSource(rig.redis, 1, { gop: 5, size: 100 }).register();
    await new PacketSource(rig.redis, 2, { gop: 5, size: 100 }).register();
  });
  afterAll(async () => rig?.close());

  it('accepts tokens (query, Bearer, subprotocol), user+pass and in-band auth', async () => {
    const token = await mintToken('carol', secret, 600);
    const paths: [string, Parameters<typeof open>[2]][] = [
      [`/ws?token=${token}`, {}],
      [`/ws?jwt_token=${token}`, {}],
      ['/ws', { headers: { Authorization: `Bearer ${token}` } }],
      ['/ws', { protocols: [`zmcast.token.${token}`] }],
      ['/ws?user=carol&pass=carol-pw', {}],
      ['/ws?username=carol&password=carol-pw', {}],
    ];
    for (const [path, o] of paths) {
      const c = await connect(rig.url, path, o);
      await c.waitFor(isType('hello'));
      await expectViewerRights(c);
      c.ws.close();
    }
    for (const msg of [{ token }, { user: 'carol', pass: 'carol-pw' }]) {
      const c = await connect(rig.url, '/ws');
      c.send({ command: 'auth', ...msg });
      expect(await c.waitFor(isType('auth'))).toMatchObject({ user: 'carol' });
      await expectViewerRights(c);
      c.ws.close();
    }
  });

  it('refuses what config mode does not take, and monitors outside the grant', async () => {
    const cases: [string, number, string][] = [
      [`/ws?auth=${'a'.repeat(32)}&user=carol`, 401, 'auth= hashes are only accepted in ZoneMinder mode'],
      ['/ws?user=carol&pass=wrong', 401, 'Invalid username or password'],
      ['/ws?user=dave&pass=dave-pw', 403, 'User is disabled'],
      [`/ws?token=${await mintToken('carol', 'some-other-secret-some-other-secret', 600)}`, 401, 'Invalid token'],
      [`/ws?token=${await mintToken('nobody', secret, 600)}`, 401, 'Credentials revoked; sign in again'],
      [`/monitors/2/ws?token=${await mintToken('carol', secret, 600)}`, 404, 'Unknown monitor'],
    ];
    for (const [path, status, body] of cases) expect(await upgradeRefusal(rig.url, path), path).toEqual({ status, body: `${body}\n` });
  });

  it('refuses a handshake without credentials with 401 when in-band auth is off', async () => {
    const strict = await startEdge({ auth: { mode: 'config', secret, inBandTimeoutMs: 0, users: [] } });
    try {
      expect(await upgradeRefusal(strict.url, '/ws')).toEqual({ status: 401, body: 'Authentication required\n' });
    } finally {
      await strict.close();
    }
  });
});

describe('edge protection', () => {
  const secret = 'protection-secret-protection-secret';
  const users = ['erin', 'frank', 'gina'].map((name) => ({ name, password: zmBcrypt(`${name}-pw`), monitors: '*' as const, enabled: true, tokensNotBefore: 0 }));

  it('refuses foreign Origins with 403, DNS rebinding and the wrong scheme included; no Origin, allowlisted origins and the page on loopback pass', async () => {
    const rig = await startEdge({ edge: { allowedOrigins: ['https://console.example'] } });
    const port = new URL(rig.url).port;
    try {
      const before = await refused('origin');
      const foreign: Record<string, string>[] = [
        { Origin: 'https://evil.example' },
        { Origin: 'null' },
        { Origin: 'http://127.0.0.1.evil.example' },
        // A DNS-rebinding page: its own name points at the edge, so Host matches its Origin.
        { Origin: `http://evil.example:${port}`, Host: `evil.example:${port}` },
        // The edge's address with another scheme, and an allowlisted host with another scheme or port.
        { Origin: `https://127.0.0.1:${port}` },
        { Origin: 'http://console.example' },
        { Origin: 'https://console.example:8443' },
      ];
      for (const headers of foreign) {
        expect(await upgradeRefusal(rig.url, '/ws', { headers }), JSON.stringify(headers)).toEqual({ status: 403, body: 'Origin not allowed\n' });
      }
      expect(await refused('origin')).toBe(before + foreign.length);
      const allowed: Record<string, string>[] = [
        {}, { Origin: rig.url }, { Origin: `http://localhost:${port}`, Host: `localhost:${port}` }, { Origin: 'https://console.example' },
      ];
      for (const headers of allowed) {
        const c = await connect(rig.url, '/ws', { headers });
        await c.waitFor(isType('hello'));
        c.ws.close();
      }
    } finally {
      await rig.close();
    }
  });

  it('caps connections per address, per user and per edge with 503, counted by reason, and frees slots on close', async () => {
    const rig = await startEdge({
      edge: { maxConnections: 5, maxConnectionsPerAddress: 2, maxConnectionsPerUser: 2 },
      auth: { mode: 'config', secret, users, trustedProxies: ['127.0.0.1'], failuresPerMinute: 0 },
    });
    // The edge trusts 127.0.0.1 as a proxy, so X-Forwarded-For names the client address.
    const attempt = (addr: string, user = 'erin') => connect(rig.url, `/ws?user=${user}&pass=${user}-pw`, { headers: { 'X-Forwarded-For': addr } });
    try {
      const held = [await attempt('198.51.100.1'), await attempt('198.51.100.1', 'frank')];
      let before = await refused('capacity_address');
      expect(await upgradeRefusal(rig.url, '/ws?user=frank&pass=frank-pw', { headers: { 'X-Forwarded-For': '198.51.100.1' } })).toEqual({ status: 503, body: 'Too many connections\n' });
      expect(await refused('capacity_address')).toBe(before + 1);

      held.push(await attempt('198.51.100.2'));
      before = await refused('capacity_user');
      expect(await upgradeRefusal(rig.url, '/ws?user=erin&pass=erin-pw', { headers: { 'X-Forwarded-For': '198.51.100.3' } })).toEqual({ status: 503, body: 'Too many connections for this user\n' });
      expect(await refused('capacity_user')).toBe(before + 1);
      // In-band logins count against the user too.
      const inBand = await connect(rig.url, '/ws', { headers: { 'X-Forwarded-For': '198.51.100.4' } });
      inBand.send({ command: 'auth', user: 'erin', pass: 'erin-pw' });
      expect(await inBand.closed).toMatchObject({ code: 1013, reason: 'Too many connections for this user' });

      held.push(await attempt('198.51.100.5', 'frank'), await attempt('198.51.100.6', 'gina'));
      expect(held.length).toBe(5);
      await sleep(50); // the refused in-band connection has given its slot back
      before = await refused('capacity_edge');
      expect(await upgradeRefusal(rig.url, '/ws?user=gina&pass=gina-pw', { headers: { 'X-Forwarded-For': '198.51.100.7' } })).toEqual({ status: 503, body: 'Too many connections\n' });
      expect(await refused('capacity_edge')).toBe(before + 1);

      const gone = held.shift()!; // erin from 198.51.100.1
      gone.ws.close();
      await gone.closed;
      await sleep(50);
      await attempt('198.51.100.1'); // the address, user and edge slots are all free again
    } finally {
      await rig.close();
    }
  });

  it('holds the per-address cap against a burst of simultaneous handshakes', async () => {
    const rig = await startEdge({
      edge: { maxConnectionsPerAddress: 3 },
      auth: { mode: 'config', secret, users, failuresPerMinute: 0 },
    });
    try {
      const results = await Promise.allSettled(Array.from({ length: 12 }, () => connect(rig.url, '/ws?user=erin&pass=erin-pw')));
      const accepted = results.filter((r) => r.status === 'fulfilled').length;
      const statuses = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as { status?: number }).status] : []));
      expect(accepted).toBe(3);
      expect(statuses).toEqual(Array(9).fill(503));
    } finally {
      await rig.close();
    }
  });

  it('gives back the user slot of a connection that hangs up during its in-band login', async () => {
    const rig = await startEdge({ edge: { maxConnectionsPerUser: 1 }, auth: { mode: 'config', secret, users, failuresPerMinute: 0 } });
    try {
      for (let i = 0; i < 10; i++) {
        const c = await open(rig.url, '/ws');
        c.send({ command: 'auth', user: 'erin', pass: 'erin-pw' });
        c.ws.terminate();
      }
      await sleep(300);
      const c = await connect(rig.url, '/ws');
      c.send({ command: 'auth', user: 'erin', pass: 'erin-pw' });
      expect(await c.waitFor((m) => m.type === 'auth' || m.type === 'error', 5000)).toMatchObject({ type: 'auth', user: 'erin' });
    } finally {
      await rig.close();
    }
  });

  it('does not count anonymous viewers (auth.mode none) as one user', async () => {
    const rig = await startEdge({ edge: { maxConnectionsPerUser: 1 } });
    try {
      for (let i = 0; i < 3; i++) await (await connect(rig.url, '/ws')).waitFor(isType('hello'));
    } finally {
      await rig.close();
    }
  });

  it('serves wss:// with its certificate and serves a renewed one after the files change, and on SIGHUP', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zmcast-tls-'));
    const make = (name: string) => {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
        '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1',
        '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.crt`)], { stdio: 'ignore' });
      return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
    };
    const a = make('edge-a');
    const b = make('edge-b');
    const live = { cert: join(dir, 'edge.crt'), key: join(dir, 'edge.key') };
    const install = (p: { cert: string; key: string }) => {
      copyFileSync(p.key, live.key);
      copyFileSync(p.cert, live.cert);
    };
    install(a);
    const ca = Buffer.concat([readFileSync(a.cert), readFileSync(b.cert)]);
    const rig = await startEdge({ edge: { tlsCert: live.cert, tlsKey: live.key, handshakeTimeoutMs: 1000 } });
    const base = rig.url.replace('http:', 'https:');
    const servedName = async () => {
      const c = await open(base, '/ws', { ca });
      await c.waitFor(isType('hello'));
      const cn = (c.ws as unknown as { _socket: TLSSocket })._socket.getPeerCertificate().subject.CN;
      c.ws.close();
      return String(cn);
    };
    try {
      expect(await servedName()).toBe('edge-a');
      const kept = await connect(base, '/ws', { ca });
      await kept.waitFor(isType('hello'));
      // Plain HTTP and a silent TCP client on the TLS port are cut, not kept.
      const silent = await rawExchange(Number(new URL(base).port), '', { timeoutMs: 5000 });
      expect(silent.closedAfterMs).toBeLessThan(1000 + 1500);
      // TLS 1.2 or later only: a client that offers at most 1.1 (allowed on its side) is refused by the edge.
      const handshake = (maxVersion: 'TLSv1.1' | 'TLSv1.2') => new Promise<string>((resolve) => {
        const sock = tlsConnect({ host: '127.0.0.1', port: Number(new URL(base).port), ca, maxVersion, minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' });
        sock.once('secureConnect', () => { resolve(sock.getProtocol() ?? 'none'); sock.destroy(); });
        sock.once('error', (err) => resolve(`refused: ${err.message}`));
      });
      expect(await handshake('TLSv1.2')).toBe('TLSv1.2');
      expect(await handshake('TLSv1.1')).toMatch(/^refused: .*alert protocol version/); // the edge's alert, not the client's refusal

      await sleep(1100); // a new mtime, whatever the file system's granularity
      install(b);
      const t0 = Date.now();
      let name = 'edge-a';
      while (name !== 'edge-b' && Date.now() - t0 < 12_000) {
        await sleep(250);
        name = await servedName();
      }
      expect(name).toBe('edge-b');
      console.info(`certificate change picked up after ${Date.now() - t0} ms`);
      kept.send({ command: 'ping', request_id: 'kept' });
      await kept.waitFor((m) => m.request_id === 'kept'); // connections from before the reload carry on

      install(a);
      process.kill(process.pid, 'SIGHUP');
      await sleep(100);
      expect(await servedName()).toBe('edge-a');
    } finally {
      await rig.close();
    }
  });
});

it('counts what it refused and whom it closed, by reason', async () => {
  expect(await refused('origin')).toBeGreaterThan(0);
  expect(await dropped('auth_expired')).toBeGreaterThan(0);
  expect(await dropped('auth_revoked')).toBeGreaterThan(0);
});
