/**
 * Hostile input against one running edge (ZoneMinder mode over a real
 * ZoneMinder database) while a healthy viewer of the same monitor watches a
 * 50 fps camera the whole time. Every attack gets its documented error,
 * HTTP status or close code; at the end the process still answers /healthz
 * and the viewer has every packet, in order, without a gap.
 *
 * The edge trusts 127.0.0.1 as a proxy, so each attack names its own client
 * address in X-Forwarded-For: the per-address failure limit and caps then
 * apply to it alone, as they would to a real attacker.
 */
import { randomBytes } from 'node:crypto';
import { connect as tcpConnect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setLogLevel } from '../../shared/log.js';
import { createZmTestDatabase, writeZmConf, type TestDatabase } from '../helpers/mariadb.js';
import { PacketSource, startEdge, type EdgeRig } from '../helpers/edge.js';
import { sleep, until } from '../helpers/wait.js';
import { phpJwtEncode, SECRET, ZmFixture, zmToken } from '../zoneminder/fixtures.js';
import { dropped, HealthyViewer, isError, isType, open, q, rawExchange, refused, type Conn, type Msg, upgradeRefusal } from './rig.js';

const HANDSHAKE_MS = 1000;
const IN_BAND_MS = 2000;
const PER_ADDRESS = 20;
const PER_USER = 30;
const RATE = 50;
const PING_MS = 1000;

let db: TestDatabase;
let zm: ZmFixture;
let rig: EdgeRig;
let port: number;
let cam: PacketSource;
let viewer: HealthyViewer;
const conns: Conn[] = [];

let nextAddress = 1;
/** A client address of its own for each attack. */
function attacker(): string {
  return `203.0.113.${nextAddress++}`;
}
const via = (addr = attacker()) => ({ 'X-Forwarded-For': addr });

async function connect(path: string, headers: Record<string, string> = via()): Promise<Conn> {
  const c = await open(rig.url, path, { headers });
  conns.push(c);
  return c;
}

/** A /ws connection of `user` (token in the Authorization header). */
async function session(user = 'viewer', path = '/ws'): Promise<Conn> {
  const c = await connect(path, { ...via(), Authorization: `Bearer ${zmToken(SECRET, user)}` });
  if (path === '/ws') await c.waitFor(isType('hello'));
  return c;
}

/** Sends one frame and returns the next JSON reply. */
async function ask(c: Conn, frame: unknown): Promise<Msg> {
  const n = c.messages.length;
  c.send(frame);
  await until(() => c.messages.length > n, 5000, `reply to ${String(typeof frame === 'string' ? frame : JSON.stringify(frame)).slice(0, 60)}`);
  return c.messages[n];
}

async function stillServes(c: Conn): Promise<void> {
  expect(await ask(c, { command: 'ping', request_id: 'alive' })).toMatchObject({ type: 'pong', request_id: 'alive' });
}

const UPGRADE = 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';

beforeAll(async () => {
  setLogLevel('error');
  db = await createZmTestDatabase();
  zm = new ZmFixture(db);
  await zm.standardOptions();
  await zm.addMonitor({ id: 1, name: 'Door' });
  await zm.addMonitor({ id: 2, name: 'Yard' });
  const viewerId = await zm.addUser({ username: 'viewer', plain: 'viewer-pw', monitors: 'None' });
  await zm.grantMonitor(viewerId, 1, 'View');
  await zm.addUser({ username: 'admin', plain: 'admin-pw', monitors: 'View' });
  await zm.addUser({ username: 'crowd', plain: 'crowd-pw', monitors: 'View' });
  await zm.addUser({ username: 'aborter', plain: 'aborter-pw', monitors: 'View' });
  rig = await startEdge({
    edge: { handshakeTimeoutMs: HANDSHAKE_MS, pingIntervalMs: PING_MS, maxConnectionsPerAddress: PER_ADDRESS, maxConnectionsPerUser: PER_USER, commandsPerSecond: RATE },
    auth: { mode: 'zoneminder', zmConf: writeZmConf(db), trustedProxies: ['127.0.0.1'], inBandTimeoutMs: IN_BAND_MS },
  });
  port = Number(new URL(rig.url).port);
  cam = new PacketSource(rig.redis, 1, { gop: 25, size: 1500 });
  await cam.register();
  await new PacketSource(rig.redis, 2, { gop: 25, size: 100 }).register();
  viewer = await HealthyViewer.start(rig.url, 1, { Authorization: `Bearer ${zmToken(SECRET, 'viewer')}`, 'X-Forwarded-For': '192.0.2.10' });
  cam.start(50);
});

afterAll(async () => {
  for (const c of conns.splice(0)) c.ws.terminate();
  await cam?.stop();
  await viewer?.client.close();
  await rig?.close();
  await db?.drop();
  setLogLevel('warn');
});

describe('hostile commands on an open connection', () => {
  it('answers malformed and huge JSON with bad_json or bad_request and keeps the connection', async () => {
    const c = await session();
    for (const text of ['{', '{"command":', 'nul', '\u0000', '']) expect(await ask(c, text), JSON.stringify(text)).toMatchObject({ type: 'error', code: 'bad_json', message: 'Malformed JSON' });
    for (const text of ['null', '[]', '"status"', '42', 'true']) expect(await ask(c, text), text).toMatchObject({ type: 'error', code: 'bad_request', message: 'A command must be a JSON object' });
    const deepArray = '['.repeat(30_000) + ']'.repeat(30_000);
    expect(['bad_request', 'bad_json']).toContain((await ask(c, deepArray)).code);
    const deepObject = '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000);
    expect(await ask(c, deepObject)).toMatchObject({ code: 'missing_command' });
    expect(await ask(c, { command: 'ping', request_id: 'big', pad: 'x'.repeat(60_000) })).toMatchObject({ type: 'pong', request_id: 'big' });
    expect(await ask(c, { command: 'status', monitor_id: 1, request_id: 'r'.repeat(10_000) })).toMatchObject({ type: 'status', monitor_id: 1 });
    await stillServes(c);
  });

  it('closes a text frame that is not UTF-8 with 1007', async () => {
    const c = await session();
    c.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    expect((await c.closed).code).toBe(1007);
  });

  it('refuses wrong types with bad_request, never coercing them', async () => {
    const c = await session();
    const cases: [unknown, string][] = [
      [{ command: 5 }, 'bad_request'],
      [{ command: ['status'] }, 'bad_request'],
      [{ command: { $ne: null } }, 'bad_request'],
      [{ command: 'status', monitor_id: 'abc' }, 'bad_request'],
      [{ command: 'status', monitor_id: -1 }, 'bad_request'],
      [{ command: 'status', monitor_id: 1.5 }, 'bad_request'],
      [{ command: 'status', monitor_id: 1e20 }, 'bad_request'],
      [{ command: 'status', monitor_id: '1e2' }, 'bad_request'],
      [{ command: 'status', monitor_id: { id: 1 } }, 'bad_request'],
      [{ command: 'status', monitor_id: [1] }, 'bad_request'],
      [{ command: 'subscribe', topic: 'status', monitor_id: 1, interval_ms: 'fast' }, 'bad_request'],
      [{ command: 'subscribe', topic: 'events', monitor_id: 1, since: 5 }, 'bad_request'],
      [{ command: 'subscribe', topic: 'events', monitor_id: 1, since: '0-0; DEL x' }, 'bad_request'],
      [{ command: 'subscribe', topic: 'stream', monitor_id: 1, codec: 264 }, 'bad_request'],
      [{ command: 'subscribe', topic: 7, monitor_id: 1 }, 'unknown_topic'],
      [{ command: 'image', monitor_id: 1, format: 'x'.repeat(100) }, 'bad_request'],
    ];
    for (const [cmd, code] of cases) expect(await ask(c, cmd), JSON.stringify(cmd)).toMatchObject({ type: 'error', code });
    // A refresh with malformed credentials is an auth_failed error; the connection keeps its login.
    expect(await ask(c, { command: 'auth', token: 123 })).toMatchObject({ type: 'error', code: 'auth_failed', message: 'token must be a string' });
    expect(await ask(c, { command: 'auth', user: ['viewer'], pass: 'viewer-pw' })).toMatchObject({ code: 'auth_failed' });
    expect(await ask(c, { command: 'auth' })).toMatchObject({ code: 'auth_failed', message: 'Authentication required' });
    await stillServes(c);
    // Before any login, malformed credentials close the connection with 1008.
    const fresh = await connect('/ws');
    fresh.send({ command: 'auth', token: { alg: 'none' } });
    expect(await fresh.closed).toMatchObject({ code: 1008, reason: 'token must be a string' });
  });

  it('answers unknown commands and topics with the draft errors', async () => {
    const c = await session();
    const cases: [unknown, string, string][] = [
      [{}, 'missing_command', 'Missing command'],
      [{ command: '' }, 'missing_command', 'Missing command'],
      [{ command: 'delete', monitor_id: 1 }, 'unknown_command', 'Unsupported command'],
      [{ command: 'constructor', monitor_id: 1 }, 'unknown_command', 'Unsupported command'],
      [{ command: '__proto__', monitor_id: 1 }, 'unknown_command', 'Unsupported command'],
      [JSON.parse('{"__proto__":{"command":"status","monitor_id":1}}'), 'missing_command', 'Missing command'],
      [{ command: 'subscribe', monitor_id: 1 }, 'missing_topic', 'Missing topic'],
      [{ command: 'subscribe', topic: 'secrets', monitor_id: 1 }, 'unknown_topic', 'Unsupported topic'],
      [{ command: 'unsubscribe', topic: 'toString', monitor_id: 1 }, 'unknown_topic', 'Unsupported topic'],
      [{ command: 'stream', codec: 'vp9', monitor_id: 1 }, 'unsupported_codec', 'Unsupported stream codec or payload unavailable'],
      [{ command: 'subscribe', topic: 'stream', codec: 'vp9', monitor_id: 1 }, 'unsupported_codec', 'Unsupported stream codec or payload unavailable'],
    ];
    for (const [cmd, code, message] of cases) expect(await ask(c, cmd), JSON.stringify(cmd)).toMatchObject({ type: 'error', code, message });
    await stillServes(c);
  });

  it('answers nonexistent and not-permitted monitor ids without telling them apart, on both endpoints', async () => {
    const c = await session('viewer');
    for (const id of [2, 999, 4294967295]) {
      expect(await ask(c, { command: 'subscribe', topic: 'stream', codec: 'auto', monitor_id: id })).toMatchObject({ code: 'forbidden', message: `Not permitted to view monitor ${id}` });
    }
    const admin = await session('admin');
    expect(await ask(admin, { command: 'status', monitor_id: 999 })).toMatchObject({ code: 'unknown_monitor', message: 'Unknown monitor 999' });
    expect(await ask(admin, { command: 'subscribe', topic: 'stream', codec: 'auto', monitor_id: '4294967295' })).toMatchObject({ code: 'bad_request' });
    const token = zmToken(SECRET, 'viewer');
    for (const path of ['/monitors/2/ws', '/monitors/999/ws', '/ws/../monitors/2/ws']) {
      expect(await upgradeRefusal(rig.url, `${path}?token=${token}`, { headers: via() }), path).toEqual({ status: 404, body: 'Unknown monitor\n' });
    }
    for (const path of ['/monitors/abc/ws', '/monitors/1234567890/ws', '/monitors/%31/ws', '/monitors/1/ws/', '/WS', '/ws%00']) {
      expect(await upgradeRefusal(rig.url, `${path}?token=${token}`, { headers: via() }), path).toEqual({ status: 404, body: 'Not found\n' });
    }
    const perMonitor = await session('viewer', '/monitors/1/ws');
    expect(await ask(perMonitor, { command: 'status', monitor_id: 2 })).toMatchObject({ code: 'bad_request', message: 'monitor_id does not match this endpoint' });
  });

  it('answers binary garbage with bad_request and keeps the connection', async () => {
    const c = await session();
    for (let i = 0; i < 5; i++) expect(await ask(c, randomBytes(1000))).toMatchObject({ type: 'error', code: 'bad_request', message: 'Commands are JSON text frames' });
    await stillServes(c);
  });

  it('answers every command of a burst past the budget exactly once (pong or rate_limited) and keeps the connection', async () => {
    const c = await session();
    for (let i = 0; i < RATE * 3; i++) c.send({ command: 'ping', request_id: i });
    const answered = () => c.messages.filter((m) => isType('pong')(m) || isError('rate_limited')(m));
    await until(() => answered().length >= RATE * 3, 5000, 'every command of the burst answered');
    await sleep(200);
    const pongs = c.messages.filter(isType('pong')).length;
    expect(pongs).toBeGreaterThanOrEqual(RATE * 2);
    expect(pongs).toBeLessThan(RATE * 3);
    // A client waiting on a request_id never hangs: each id is answered once, by a pong or an error.
    const ids = answered().map((m) => (m as { request_id?: number }).request_id).sort((x, y) => x! - y!);
    expect(ids).toEqual(Array.from({ length: RATE * 3 }, (_, i) => i));
    expect(c.messages.filter(isError('rate_limited')).length).toBe(RATE * 3 - pongs);
    await sleep(1000); // refilled
    await stillServes(c);
  });

  it('meets 10,000 commands a second with rate_limited errors, then closes with 4029', async () => {
    const c = await session();
    const before = await dropped('rate_limited');
    const t0 = Date.now();
    for (let i = 0; i < 10_000; i++) c.send('{"command":"ping"}');
    const closed = await c.closed;
    expect(closed).toMatchObject({ code: 4029, reason: 'command flood' });
    const pongs = c.messages.filter(isType('pong')).length;
    expect(pongs).toBeLessThanOrEqual(RATE * 3); // at most the burst; commands still queued at the close are dropped
    // Refused commands are answered until the flood is recognised (5× the rate in a second), then the connection ends.
    const refused = c.messages.filter(isError('rate_limited')).length;
    expect(refused).toBeGreaterThan(0);
    expect(refused).toBeLessThanOrEqual(RATE * 5);
    expect(c.messages.find(isError('rate_limited'))).toMatchObject({ message: `More than ${RATE} commands per second` });
    expect(await dropped('rate_limited')).toBe(before + 1);
    console.info(`command flood: ${pongs} pongs, closed 4029 after ${closed.at - t0} ms`);
  });

  it('closes a frame over edge.maxPayload with 1009, whatever its length field claims', async () => {
    const text = await session();
    text.send('x'.repeat(70_000));
    expect((await text.closed).code).toBe(1009);
    const binary = await session();
    binary.send(randomBytes(70_000));
    expect((await binary.closed).code).toBe(1009);
    // A masked text frame header announcing 2^40 bytes, and nothing after it.
    const claim = await session();
    const raw = (claim.ws as unknown as { _socket: Socket })._socket;
    raw.write(Buffer.from([0x81, 0xff, 0, 0, 0x01, 0, 0, 0, 0, 0, 1, 2, 3, 4]));
    expect((await claim.closed).code).toBe(1009);
  });
});

describe('hostile handshakes', () => {
  it('refuses alg:none, wrong-key, wrong-algorithm, refresh, expired and future tokens with 401, and never logs them', async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: 'ZoneMinder', iat: now, exp: now + 3600, user: 'admin', type: 'access' };
    const cases: [string, string][] = [
      [phpJwtEncode(claims, '', { typ: 'JWT', alg: 'none' }), 'Invalid token'],
      [phpJwtEncode(claims, '', { typ: 'JWT', alg: 'None' }), 'Invalid token'],
      [phpJwtEncode(claims, 'not-the-secret-not-the-secret-000'), 'Invalid token'],
      [phpJwtEncode(claims, SECRET, { typ: 'JWT', alg: 'HS512' }), 'Invalid token'],
      [phpJwtEncode(claims, SECRET, { typ: 'JWT', alg: 'RS256' }), 'Invalid token'],
      [phpJwtEncode({ ...claims, iss: 'Someone' }, SECRET), 'Invalid token'],
      [phpJwtEncode({ ...claims, type: undefined }, SECRET), 'Invalid token'],
      [phpJwtEncode({ ...claims, exp: undefined }, SECRET), 'Invalid token'],
      [phpJwtEncode({ ...claims, iat: now + 600 }, SECRET), 'Invalid token'],
      [phpJwtEncode({ ...claims, user: 42 }, SECRET), 'Invalid token'],
      [zmToken(SECRET, 'admin', { type: 'refresh' }), 'Only access tokens are allowed; exchange the refresh token for an access token first'],
      [phpJwtEncode({ ...claims, iat: now - 7200, exp: now - 1 }, SECRET), 'Token expired'],
      ['not-a-jwt', 'Invalid token'],
      ['a.b.c', 'Invalid token'],
      ['x'.repeat(8000), 'Invalid token'],
    ];
    const logged: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    // Captured, not shown: the log lines are what is under test.
    process.stderr.write = ((chunk: string | Uint8Array) => {
      logged.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    setLogLevel('info');
    try {
      for (const [token, body] of cases) {
        for (const o of [{ path: `/ws?token=${q(token)}`, headers: via() }, { path: '/ws', headers: { ...via(), Authorization: `Bearer ${token}` } }]) {
          expect(await upgradeRefusal(rig.url, o.path, { headers: o.headers }), token.slice(0, 40)).toEqual({ status: 401, body: `${body}\n` });
        }
      }
      expect(await upgradeRefusal(rig.url, `/ws?token=${'x'.repeat(9000)}`, { headers: via() })).toEqual({ status: 400, body: 'Token too long\n' });
      for (const [token, reason] of [[cases[0][0], 'Invalid token'], [cases[10][0], 'Only access tokens are allowed; exchange the refresh token for an access token first']]) {
        const c = await connect('/ws');
        c.send({ command: 'auth', token });
        expect(await c.closed).toMatchObject({ code: 4401, reason });
      }
    } finally {
      setLogLevel('error');
      process.stderr.write = write;
    }
    expect(logged.join('')).toContain('authentication refused');
    for (const [token] of cases) if (token.length > 20) expect(logged.join(''), 'a token in the log').not.toContain(token);
  });

  it('treats SQL-looking user names as names: 401 or 400, and the database is untouched', async () => {
    const [[{ n: usersBefore }]] = await db.sql.query('SELECT COUNT(*) AS n FROM Users') as unknown as [[{ n: number }]];
    const names = [`' OR '1'='1`, `admin'-- `, `admin' #`, `"; DROP TABLE Users; --`, `viewer') OR ('1'='1`, `%' OR Username LIKE '%`, `\\' OR 1=1 -- `, `admin\` WHERE 1=1 -- `];
    for (const name of names) {
      expect(await upgradeRefusal(rig.url, `/ws?user=${q(name)}&pass=${q("' OR '1'='1")}`, { headers: via() }), name).toEqual({ status: 401, body: 'Invalid username or password\n' });
      expect(await upgradeRefusal(rig.url, `/ws?auth=${'f'.repeat(32)}&user=${q(name)}`, { headers: via() }), name).toEqual({ status: 401, body: 'Invalid username or password\n' });
      // Correctly signed, so the name reaches the database.
      expect(await upgradeRefusal(rig.url, `/ws?token=${zmToken(SECRET, name)}`, { headers: via() }), name).toEqual({ status: 401, body: 'Credentials revoked; sign in again\n' });
    }
    for (const name of ['admin\u0000', 'admin\r\nX-Injected: 1', 'a'.repeat(65)]) {
      expect((await upgradeRefusal(rig.url, `/ws?user=${q(name)}&pass=x`, { headers: via() })).status, JSON.stringify(name)).toBe(400);
    }
    const c = await connect('/ws');
    c.send({ command: 'auth', user: `admin' OR '1'='1`, pass: 'x' });
    expect(await c.closed).toMatchObject({ code: 4401, reason: 'Invalid username or password' });
    const [[{ n: usersAfter }]] = await db.sql.query('SELECT COUNT(*) AS n FROM Users') as unknown as [[{ n: number }]];
    expect(usersAfter).toBe(usersBefore);
    await (await connect('/ws?user=admin&pass=admin-pw')).waitFor(isType('hello'));
  });

  it('stops guessing from one address with 429 after auth.failuresPerMinute failures', async () => {
    const addr = attacker();
    for (let i = 0; i < 20; i++) expect((await upgradeRefusal(rig.url, `/ws?user=admin&pass=guess${i}`, { headers: via(addr) })).status).toBe(401);
    const before = await refused('auth_rate_limited');
    const r = await upgradeRefusal(rig.url, '/ws?user=admin&pass=admin-pw', { headers: via(addr) });
    expect(r.status).toBe(429);
    expect(r.body).toMatch(/^Too many failed logins; try again in \d+ s\n$/);
    expect(await refused('auth_rate_limited')).toBe(before + 1);
    await (await connect('/ws?user=admin&pass=admin-pw')).waitFor(isType('hello')); // other addresses are not affected
  });

  it('answers header floods with 431 and malformed requests with 400, without an upgrade', async () => {
    const huge = await rawExchange(port, `GET /ws HTTP/1.1\r\nHost: x\r\n${UPGRADE}X-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(huge.response).toMatch(/^HTTP\/1\.1 431 /);
    const many = Array.from({ length: 3000 }, (_, i) => `X-H${i}: v\r\n`).join('');
    const flood = await rawExchange(port, `GET /ws HTTP/1.1\r\nHost: x\r\n${UPGRADE}${many}\r\n`);
    expect(flood.response).toMatch(/^HTTP\/1\.1 431 /);
    const protocols = await rawExchange(port, `GET /ws HTTP/1.1\r\nHost: x\r\n${UPGRADE}Sec-WebSocket-Protocol: ${Array.from({ length: 4000 }, (_, i) => `p${i}`).join(', ')}\r\n\r\n`);
    expect(protocols.response).toMatch(/^HTTP\/1\.1 431 /);
    for (const garbage of ['GARBAGE\r\n\r\n', `GET /ws HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n${UPGRADE}\r\n`, '\u0016\u0003\u0001\u0002\u0000\u0001\u0000\u0001\u00fc\u0003\u0003']) {
      expect((await rawExchange(port, garbage)).response, JSON.stringify(garbage)).toMatch(/^HTTP\/1\.1 400 /);
    }
    // An upgrade the WebSocket layer rejects (no key) is refused after authentication, and gives back its slots.
    const token = zmToken(SECRET, 'aborter');
    const addr = attacker();
    for (let i = 0; i < PER_USER + 5; i++) {
      const r = await rawExchange(port, `GET /ws HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nX-Forwarded-For: ${addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      expect(r.response).toMatch(/^HTTP\/1\.1 400 /);
    }
    await (await connect(`/ws?token=${token}`, via(addr))).waitFor(isType('hello'));
  });

  it(`cuts half-open handshakes after edge.handshakeTimeoutMs (${HANDSHAKE_MS} ms)`, async () => {
    const bound = HANDSHAKE_MS + 1000; // the timeout, plus Node's check interval and slack
    const slowloris = new Promise<number>((resolve) => {
      const t0 = Date.now();
      const sock = tcpConnect(port, '127.0.0.1');
      const lines = ['GET /ws HTTP/1.1\r\n', 'Host: x\r\n', ...UPGRADE.split('\r\n').filter(Boolean).map((l) => `${l}\r\n`), 'X-1: a\r\n', 'X-2: b\r\n', 'X-3: c\r\n', 'X-4: d\r\n', 'X-5: e\r\n'];
      const timer = setInterval(() => { if (lines.length && !sock.destroyed) sock.write(lines.shift()!); }, 150);
      sock.on('error', () => {});
      sock.on('close', () => { clearInterval(timer); resolve(Date.now() - t0); });
    });
    const [silent, partial, dribble] = await Promise.all([
      rawExchange(port, '', { timeoutMs: 10_000 }),
      rawExchange(port, 'GET /ws HTTP/1.1\r\nHost: x\r\n', { timeoutMs: 10_000 }),
      slowloris,
    ]);
    expect(partial.response).toMatch(/^HTTP\/1\.1 408 /);
    for (const ms of [silent.closedAfterMs, partial.closedAfterMs, dribble]) {
      expect(ms).toBeGreaterThanOrEqual(HANDSHAKE_MS - 50);
      expect(ms).toBeLessThan(bound);
    }
    console.info(`half-open handshakes cut after: silent ${silent.closedAfterMs} ms, partial ${partial.closedAfterMs} ms, slowloris ${dribble} ms`);
  });

  it('drops a client that completes the upgrade and then never answers a ping', async () => {
    const before = await dropped('ping_timeout');
    const t0 = Date.now();
    const mute = await rawExchange(port, `GET /ws HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${zmToken(SECRET, 'admin')}\r\nX-Forwarded-For: ${attacker()}\r\n${UPGRADE}\r\n`, { timeoutMs: 4 * PING_MS });
    expect(mute.response).toMatch(/^HTTP\/1\.1 101 /);
    expect(Date.now() - t0).toBeLessThanOrEqual(2 * PING_MS + 500); // the first ping comes within one period, the drop one period later
    expect(await dropped('ping_timeout')).toBe(before + 1);
  });

  it(`refuses connections from one address past edge.maxConnectionsPerAddress (${PER_ADDRESS}) with 503, and frees them on close`, async () => {
    const addr = attacker();
    const token = zmToken(SECRET, 'crowd');
    const before = await refused('capacity_address');
    const results = await Promise.allSettled(Array.from({ length: PER_ADDRESS + 5 }, () => open(rig.url, `/ws?token=${token}`, { headers: via(addr) })));
    const held = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const refusals = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as { status: number; body: string }] : []));
    expect(held).toHaveLength(PER_ADDRESS);
    expect(refusals.map((r) => [r.status, r.body])).toEqual(Array(5).fill([503, 'Too many connections\n']));
    expect(await refused('capacity_address')).toBe(before + 5);
    await Promise.all(held.map((c) => { c.ws.close(); return c.closed; }));
    await sleep(50);
    await (await connect(`/ws?token=${token}`, via(addr))).waitFor(isType('hello'));
  });

  it('closes unauthenticated connections that only send commands, at the in-band deadline', async () => {
    const c = await connect('/ws');
    const t0 = Date.now();
    expect(await ask(c, { command: 'subscribe', topic: 'stream', codec: 'auto', monitor_id: 1 })).toMatchObject({ code: 'unauthenticated' });
    expect(await ask(c, randomBytes(64))).toMatchObject({ code: 'bad_request' });
    const closed = await c.closed;
    expect(closed).toMatchObject({ code: 4401, reason: 'Authentication required' });
    expect(closed.at - t0).toBeLessThan(IN_BAND_MS + 500);
    expect(c.binary).toHaveLength(0);
  });
});

describe('after all that', () => {
  it('is still up, and the healthy viewer received every packet in order', async () => {
    const health = await fetch(`${rig.url}/healthz`);
    expect([health.status, await health.text()]).toEqual([200, 'ok']);
    await (await session('viewer')).waitFor(isType('hello'));
    await cam.stop();
    const last = cam.sequence - 1;
    const { first, count } = await viewer.assertNoGap(last);
    expect(count).toBeGreaterThan(100);
    console.info(`healthy viewer: packets ${first}..${last} (${count}), no gap`);
  });
});

