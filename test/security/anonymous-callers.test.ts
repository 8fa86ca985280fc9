/**
 * What someone who reaches the public port without credentials learns: no
 * monitor id or name, nothing about who watches what, nothing about how auth
 * is set up. Against a running edge in ZoneMinder mode over a real ZoneMinder
 * database: `/monitors` needs credentials and lists what the caller may
 * watch; `/metrics` and the detailed `/readyz` are on the admin listener
 * only; a ZoneMinder still on its shipped default secret refuses forged
 * tokens and hashes like any other bad one, and says why only in its log and
 * on the admin listener. The stale `/monitors` answer during a Redis stall
 * is kept for authenticated callers (config mode over a Redis this file pauses).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../shared/auth/index.js';
import { setLogLevel } from '../../shared/log.js';
import { ZM_DEFAULT_SECRET } from '../../shared/zoneminder/options.js';
import { createZmTestDatabase, writeZmConf, type TestDatabase } from '../helpers/mariadb.js';
import { PacketSource, startEdge, type EdgeRig } from '../helpers/edge.js';
import { DrillRedis } from '../faults/rig.js';
import { phpJwtEncode, SECRET, zmAuthHashAt, zmBcrypt, ZmFixture, zmToken } from '../zoneminder/fixtures.js';
import { upgradeRefusal } from './rig.js';

let db: TestDatabase;
let zm: ZmFixture;

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: Headers; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.text(), headers: res.headers, ms: performance.now() - t0 };
}

/** Everything a stderr write carried while `action` ran (JSON log lines). */
async function logged(action: () => Promise<void>): Promise<string> {
  const lines: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  setLogLevel('info');
  try {
    await action();
  } finally {
    setLogLevel('warn');
    process.stderr.write = write;
  }
  return lines.join('');
}

beforeAll(async () => {
  db = await createZmTestDatabase();
  zm = new ZmFixture(db);
  await zm.addMonitor({ id: 1, name: 'Front door' });
  await zm.addMonitor({ id: 2, name: 'Bedroom' });
});

afterAll(async () => db?.drop());

describe('an edge in ZoneMinder mode, to a caller without credentials', () => {
  let rig: EdgeRig;
  let viewerStored: string;

  beforeAll(async () => {
    await zm.standardOptions({ ZM_AUTH_RELAY: 'none' });
    viewerStored = zmBcrypt('viewer-pw');
    const viewer = await zm.addUser({ username: 'viewer', password: viewerStored, monitors: 'None' });
    await zm.grantMonitor(viewer, 1, 'View');
    await zm.addUser({ username: 'admin', plain: 'admin-pw', monitors: 'View' });
    // trustRelayNone makes the edge warn about its auth setup: what /readyz used to tell anyone.
    rig = await startEdge({ auth: { mode: 'zoneminder', zmConf: writeZmConf(db), trustRelayNone: true, failuresPerMinute: 0 } });
    for (const id of [1, 2]) await new PacketSource(rig.redis, id, { gop: 5, size: 100 }).register();
  });

  afterAll(async () => rig?.close());

  it('lists no monitor on /monitors without credentials (401), and to each user only those it may watch', async () => {
    for (const [what, path, headers] of [
      ['nothing', '/monitors', {}],
      ['an unknown user', '/monitors?user=nobody&pass=wrong', {}],
      ['a forged token', '/monitors', { Authorization: `Bearer ${zmToken('not-the-secret-not-the-secret-00', 'admin')}` }],
    ] as [string, string, Record<string, string>][]) {
      const r = await get(`${rig.url}${path}`, headers);
      expect(r.status, what).toBe(401);
      expect(r.body, what).not.toMatch(/Test 1|Test 2|"id"/);
    }
    expect((await get(`${rig.url}/monitors`)).body).toBe('Authentication required\n');
    const byToken = await get(`${rig.url}/monitors`, { Authorization: `Bearer ${zmToken(SECRET, 'viewer')}` });
    expect([byToken.status, JSON.parse(byToken.body)]).toEqual([200, [{ id: 1, name: 'Test 1' }]]);
    expect(JSON.parse((await get(`${rig.url}/monitors?user=viewer&pass=viewer-pw`)).body)).toEqual([{ id: 1, name: 'Test 1' }]);
    const hash = zmAuthHashAt(SECRET, 'viewer', viewerStored, '', new Date());
    expect(JSON.parse((await get(`${rig.url}/monitors?auth=${hash}&user=viewer`)).body)).toEqual([{ id: 1, name: 'Test 1' }]);
    expect(JSON.parse((await get(`${rig.url}/monitors?token=${zmToken(SECRET, 'admin')}`)).body)).toEqual([{ id: 1, name: 'Test 1' }, { id: 2, name: 'Test 2' }]);
  });

  it('serves /metrics and the detailed /readyz on the admin listener only; the public /readyz is one terse line', async () => {
    const viewer = await get(`${rig.url}/monitors`, { Authorization: `Bearer ${zmToken(SECRET, 'viewer')}` });
    expect(viewer.status).toBe(200);
    const metrics = await get(`${rig.url}/metrics`);
    expect([metrics.status, metrics.body]).toEqual([404, 'Not found']);
    const ready = await get(`${rig.url}/readyz`);
    expect([ready.status, ready.body]).toEqual([200, 'ready\n']);
    const admin = await get(`${rig.adminUrl}/readyz`);
    expect(admin.status).toBe(200);
    expect(admin.body).toContain('auth: zoneminder');
    expect(admin.body).toContain('warning: ZM_AUTH_RELAY is none and auth.trustRelayNone is on');
    expect((await get(`${rig.adminUrl}/metrics`)).body).toContain('zmcast_auth_attempts_total');
  });

  it('sends the page with a CSP that allows its own scripts and edge only, and forbids framing', async () => {
    const page = await get(`${rig.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'none'.*script-src 'self'.*connect-src 'self'.*frame-ancestors 'none'/);
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
  });
});

describe('an edge over a ZoneMinder that still has its shipped default secret', () => {
  let rig: EdgeRig;

  beforeAll(async () => {
    await zm.setOptions({ ZM_AUTH_HASH_SECRET: ZM_DEFAULT_SECRET, ZM_AUTH_RELAY: 'hashed' });
    await zm.addUser({ username: 'dflt', password: zmBcrypt('dflt-pw'), monitors: 'View' });
    rig = await startEdge({ auth: { mode: 'zoneminder', zmConf: writeZmConf(db), failuresPerMinute: 0 } });
    for (const id of [1, 2]) await new PacketSource(rig.redis, id, { gop: 5, size: 100 }).register();
  });

  afterAll(async () => rig?.close());

  it('refuses tokens and hashes forged with it exactly as any bad token or hash, and tells only its log and admin listener why', async () => {
    const now = Math.floor(Date.now() / 1000);
    const forged = phpJwtEncode({ iss: 'ZoneMinder', iat: now, exp: now + 3600, user: 'admin', type: 'access' }, ZM_DEFAULT_SECRET);
    const hash = zmAuthHashAt(ZM_DEFAULT_SECRET, 'admin', 'x', '', new Date());
    const log = await logged(async () => {
      expect(await upgradeRefusal(rig.url, `/ws?token=${forged}`)).toEqual({ status: 401, body: 'Invalid token\n' });
      expect(await upgradeRefusal(rig.url, `/ws?auth=${hash}&user=admin`)).toEqual({ status: 401, body: 'Invalid username or password\n' });
      expect(await upgradeRefusal(rig.url, `/ws?auth=${hash}`)).toEqual({ status: 401, body: 'Invalid username or password\n' });
      expect(await get(`${rig.url}/monitors?token=${forged}`)).toMatchObject({ status: 401, body: 'Invalid token\n' });
    });
    expect(log).toContain('ZM_AUTH_HASH_SECRET is the shipped default: tokens and auth hashes are refused');
    expect(log).not.toContain(forged);
    expect((await get(`${rig.url}/readyz`)).body).toBe('ready\n');
    expect((await get(`${rig.adminUrl}/readyz`)).body).toContain('warning: ZM_AUTH_HASH_SECRET is the shipped default');
    // Passwords still work.
    expect(JSON.parse((await get(`${rig.url}/monitors?user=dflt&pass=dflt-pw`)).body)).toHaveLength(2);
  });
});

describe('/monitors while Redis does not answer, for a caller with credentials', () => {
  const secret = 'stale-listing-secret-stale-listing-secret';
  let redis: DrillRedis;
  let rig: EdgeRig;

  beforeAll(async () => {
    redis = await DrillRedis.start();
    rig = await startEdge({
      auth: { mode: 'config', secret, users: [{ name: 'carol', monitors: [1], enabled: true, tokensNotBefore: 0 }] },
    }, redis.url);
    for (const id of [1, 2]) await new PacketSource(rig.redis, id, { gop: 5, size: 100 }).register();
  });

  afterAll(async () => {
    redis?.resume();
    await rig?.close();
    await redis?.kill();
  });

  it('answers within about a second from what the edge read last, each entry marked stale, and still only what the caller may watch', async () => {
    const auth = { Authorization: `Bearer ${await mintToken('carol', secret, 600)}` };
    expect(JSON.parse((await get(`${rig.url}/monitors`, auth)).body)).toEqual([{ id: 1, name: 'Test 1' }]);
    redis.pause();
    try {
      const stale = await get(`${rig.url}/monitors`, auth);
      expect(stale.ms).toBeLessThan(2000);
      expect(stale.headers.get('warning')).toBe('110 - "Response is Stale"');
      expect(JSON.parse(stale.body)).toEqual([{ id: 1, name: 'Test 1', stale: true }]);
      expect((await get(`${rig.url}/monitors`)).status).toBe(401);
      const ready = await get(`${rig.url}/readyz`);
      expect([ready.status, ready.body]).toEqual([503, 'redis unreachable\n']);
    } finally {
      redis.resume();
    }
  });
});
